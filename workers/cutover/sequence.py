"""Moving client traffic from the source to the target (cutover) or back (back-out), through the proxies' switch.

One sequence, both ways (``switch_traffic``):

1. preflight: every proxy answers, is on the side we leave, not paused, and agrees on the topic; the replayer group
   that must drain (cutover: the forward replayers on the capture topic; back-out: the reverse replayers on the
   reverse topic) has running members and commits; the drain's bound is below the proxies' ``max_hold_s``.
2. pause writes on every proxy at once; each answers once its in-flight writes are finished and captured. If one
   fails, every proxy is resumed (on the side it was on) and the sequence stops.
3. the topic's high watermarks, read right after the last pause returned: everything captured before is below.
4. wait until the group's commits reach them on every partition, at most ``drain_timeout_s``. Too long: every
   proxy resumes on the side it was on, and CutoverAborted says the lag left per partition.
5. switch every proxy; if one fails, those already switched are switched back, all resume, and it stops.
6. resume every proxy: held writes go to the new side.

Reads keep flowing during the hold; only writes wait, for the pause plus the drain plus the switch. Nothing here
changes a replayer or a topic: it reads Kafka and talks to the proxies.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from workers.capture import topic_admin
from workers.common.errors import ConfigurationError, MigrationError
from workers.cutover.admin_client import SIDES, Outcome, ProxyAdmin, Side, each, failures
from workers.cutover.drain import CommitReader, read_marks, wait_for_drain

log = logging.getLogger("workers.cutover")

Direction = Literal["cutover", "backout"]
# Group states with no member to apply anything (a drain would only wait out its timeout).
_NO_MEMBERS = frozenset({"empty", "dead", "unknown"})


class CutoverAborted(MigrationError):
    """The switch did not happen and every proxy is back on the side it was on, taking writes (exit code 3).
    ``stage`` says where it stopped: preflight, pause, drain or switch."""

    exit_code = 3

    def __init__(self, stage: str, message: str, *, remaining: dict[int, int] | None = None,
                 statuses: dict[str, Any] | None = None) -> None:
        super().__init__(f"{stage}: {message}")
        self.stage = stage
        self.remaining = remaining or {}
        self.statuses = statuses or {}


class CutoverFailed(MigrationError):
    """Undoing a failed step failed too: the proxies may be on different sides or still holding writes (they resume
    by themselves after their max_hold_s). The message lists each proxy's state; see ``workers.cutover status``."""


@dataclass
class SwitchResult:
    """What a cutover or back-out did, and how long writes were held."""

    direction: Direction
    from_side: Side
    to_side: Side
    topic: str
    group: str
    # Per partition: the high watermark at the hold, and the group's commit when the drain ended.
    watermarks: dict[int, int]
    committed: dict[int, int]
    pause_s: float
    drain_s: float
    switch_s: float
    # From the first pause sent to the last resume answered: the longest any write waited.
    hold_s: float
    total_s: float
    statuses: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """The JSON form (``--json``)."""
        out = asdict(self)
        out["watermarks"] = {str(k): v for k, v in self.watermarks.items()}
        out["committed"] = {str(k): v for k, v in self.committed.items()}
        return out


def sides(direction: Direction) -> tuple[Side, Side]:
    """The side left and the side reached."""
    return ("source", "target") if direction == "cutover" else ("target", "source")


def cutover(proxies: Sequence[ProxyAdmin], *, brokers: str, group: str, topic: str | None = None,
            **options: Any) -> SwitchResult:
    """Source to target, once the forward replayers applied everything captured (``switch_traffic``)."""
    return switch_traffic("cutover", proxies, brokers=brokers, group=group, topic=topic, **options)


def backout(proxies: Sequence[ProxyAdmin], *, brokers: str, group: str, topic: str | None = None,
            **options: Any) -> SwitchResult:
    """Target back to source, once the reverse replayers applied everything sent to the target. ``group`` and
    ``topic``: the reverse replayers' (the topic defaults to what the proxies report as theirs)."""
    return switch_traffic("backout", proxies, brokers=brokers, group=group, topic=topic, **options)


def switch_traffic(direction: Direction, proxies: Sequence[ProxyAdmin], *, brokers: str, group: str,
                   topic: str | None = None, kafka_config: dict[str, Any] | None = None,
                   drain_timeout_s: float = 20.0, poll_s: float = 0.2, max_hold_s: float | None = None,
                   kafka_timeout_s: float = 10.0, progress: Callable[[str], None] | None = None) -> SwitchResult:
    """The six steps above. ``topic``: the topic the group drains (None: the one every proxy names for the side
    being left); ``max_hold_s``: sent with the pause (None: each proxy's own). Raises CutoverAborted (nothing
    changed), CutoverFailed (an undo failed), ConfigurationError (bad input)."""
    say = progress or log.info
    if not proxies:
        raise ConfigurationError("no proxy admin URL given")
    if drain_timeout_s <= 0:
        raise ConfigurationError(f"drain timeout {drain_timeout_s:g}s must be above 0")
    from_side, to_side = sides(direction)
    began = time.monotonic()
    topic = _preflight(direction, proxies, brokers=brokers, group=group, topic=topic, kafka_config=kafka_config,
                       drain_timeout_s=drain_timeout_s, max_hold_s=max_hold_s, timeout_s=kafka_timeout_s, say=say)
    reader = CommitReader(brokers, kafka_config, group, topic)
    try:
        # 2. pause
        hold_began = time.monotonic()
        say(f"pausing writes on {len(proxies)} proxies")
        paused = each(proxies, lambda p: p.pause_writes(max_hold_s))
        pause_s = time.monotonic() - hold_began
        if not all(o.ok for o in paused):
            _resume_all(proxies, say)
            raise CutoverAborted("pause", f"a proxy could not pause writes ({failures(paused)}); every proxy "
                                          f"resumed on the {from_side}", statuses=_statuses(proxies))
        # 3. watermarks
        try:
            marks = read_marks(brokers, kafka_config, topic, kafka_timeout_s)
        except MigrationError as exc:
            _resume_all(proxies, say)
            raise CutoverAborted("drain", f"{exc}; every proxy resumed on the {from_side}",
                                 statuses=_statuses(proxies)) from None
        say(f"writes held after {pause_s:.2f}s; waiting for group {group!r} to reach "
            f"{_marks_text(marks.high)} on {topic} (at most {drain_timeout_s:g}s)")
        # 4. drain
        drained = wait_for_drain(reader, marks, timeout_s=drain_timeout_s, poll_s=poll_s,
                                 progress=lambda left: say(f"  still to apply: {_marks_text(left)}"))
        if not drained.done:
            _resume_all(proxies, say)
            raise CutoverAborted(
                "drain", f"group {group!r} did not apply everything captured on {topic} within "
                         f"{drain_timeout_s:g}s (records left per partition: {_marks_text(drained.remaining)}); "
                         f"every proxy resumed on the {from_side}, nothing switched",
                remaining=drained.remaining, statuses=_statuses(proxies))
        say(f"drained in {drained.seconds:.2f}s; switching to the {to_side}")
        # 5. switch
        switch_began = time.monotonic()
        _switch_all(proxies, from_side, to_side, say)
        switch_s = time.monotonic() - switch_began
        # 6. resume
        warnings = [f"{o.error} (it resumes by itself after its max_hold_s)"
                    for o in each(proxies, lambda p: p.resume()) if not o.ok]
        hold_s = time.monotonic() - hold_began
        for warning in warnings:
            say(f"warning: {warning}")
        say(f"{direction} done: writes held {hold_s:.2f}s (pause {pause_s:.2f}s, drain {drained.seconds:.2f}s, "
            f"switch {switch_s:.2f}s); traffic goes to the {to_side}")
        return SwitchResult(direction, from_side, to_side, topic, group, dict(marks.high), drained.committed,
                            pause_s, drained.seconds, switch_s, hold_s, time.monotonic() - began,
                            _statuses(proxies), warnings)
    except KeyboardInterrupt:
        # Interrupted by hand: writes must not stay held until max_hold_s (wherever each proxy is now).
        _resume_all(proxies, say)
        raise
    finally:
        reader.close()


def _preflight(direction: Direction, proxies: Sequence[ProxyAdmin], *, brokers: str, group: str,
               topic: str | None, kafka_config: dict[str, Any] | None, drain_timeout_s: float,
               max_hold_s: float | None, timeout_s: float, say: Callable[[str], None]) -> str:
    """Step 1; the topic to drain."""
    from_side, _ = sides(direction)
    outcomes = each(proxies, lambda p: p.status())
    if not all(o.ok for o in outcomes):
        raise CutoverAborted("preflight", f"not every proxy answers: {failures(outcomes)}")
    problems: list[str] = []
    topics: set[str] = set()
    holds: list[float] = []
    for outcome in outcomes:
        status, url = outcome.answer or {}, outcome.proxy.url
        if status.get("side") != from_side:
            problems.append(f"{url} is on the {status.get('side')!r} side, not the {from_side}")
        if status.get("paused") or status.get("held"):
            problems.append(f"{url} is paused (held {status.get('held')}): another switch under way?")
        named = (status.get("topics") or {}).get(from_side)
        if isinstance(named, str):
            topics.add(named)
        if isinstance(status.get("max_hold_s"), (int, float)):
            holds.append(float(status["max_hold_s"]))
    if topic is None:
        if len(topics) != 1:
            problems.append(f"the proxies name {sorted(topics) or 'no'} topic(s) for the {from_side} side; "
                            "give the topic to drain")
        else:
            topic = topics.pop()
    elif topics - {topic}:
        problems.append(f"the proxies capture the {from_side} side's traffic to {sorted(topics)}, not {topic!r}")
    if problems:
        raise CutoverAborted("preflight", "; ".join(problems), statuses=_by_url(outcomes))
    assert topic is not None
    hold = max_hold_s if max_hold_s is not None else min(holds, default=None)
    if hold is not None and drain_timeout_s >= hold - 1.0:
        raise ConfigurationError(f"the drain timeout ({drain_timeout_s:g}s) must stay below the proxies' "
                                 f"max_hold_s ({hold:g}s) by more than a second, or they resume on their own "
                                 "in the middle of the switch")
    try:
        lag = topic_admin.consumer_lag(brokers, topic, group, kafka_config, timestamps=False, timeout_s=timeout_s)
    except MigrationError as exc:
        raise CutoverAborted("preflight", f"reading group {group!r} on {topic}: {exc}") from None
    if lag.state in _NO_MEMBERS:
        raise CutoverAborted("preflight", f"replayer group {group!r} has no running member ({lag.state}) on "
                                          f"{topic}: nothing would apply what is captured before the switch")
    if not lag.committed_any and any(p.high > p.low for p in lag.partitions):
        raise CutoverAborted("preflight", f"replayer group {group!r} has committed nothing on {topic} yet "
                                          f"(lag {lag.total_lag}): let it catch up first")
    say(f"preflight: {len(proxies)} proxies on the {from_side}; group {group!r} ({lag.state}) is "
        f"{lag.total_lag} records behind on {topic}")
    if lag.total_lag > 0:
        say("  (the drain waits for that lag too: start the switch once it is small)")
    return topic


def _switch_all(proxies: Sequence[ProxyAdmin], from_side: Side, to_side: Side, say: Callable[[str], None]) -> None:
    """Every proxy to ``to_side``, or, when one fails, every proxy back on ``from_side`` and resumed."""
    switched = each(proxies, lambda p: p.switch(to_side))
    if all(o.ok for o in switched):
        return
    say(f"a switch failed ({failures(switched)}); switching back")
    # A failed call may still have switched (an answer lost): ask each failed one where it is.
    back = [o.proxy for o in switched if o.ok or _side_of(o.proxy) != from_side]
    undone = each(back, lambda p: p.switch(from_side))
    resumed = each(proxies, lambda p: p.resume())
    undo_errors = [o for o in [*undone, *resumed] if not o.ok]
    if undo_errors:
        raise CutoverFailed(f"switching to the {to_side} failed ({failures(switched)}) and undoing it failed too "
                            f"({failures(undo_errors)}); proxy states: {_statuses(proxies)}")
    raise CutoverAborted("switch", f"{failures(switched)}; every proxy switched back and resumed on the "
                                   f"{from_side}", statuses=_statuses(proxies))


def _side_of(proxy: ProxyAdmin) -> str | None:
    try:
        return str(proxy.status().get("side"))
    except MigrationError:
        return None


def _resume_all(proxies: Sequence[ProxyAdmin], say: Callable[[str], None]) -> None:
    """Resume every proxy where it is (a proxy that was not paused answers as it likes: a failure is reported)."""
    for outcome in each(proxies, lambda p: p.resume()):
        if not outcome.ok:
            say(f"warning: resuming failed: {outcome.error} (it resumes by itself after its max_hold_s)")


def _statuses(proxies: Sequence[ProxyAdmin]) -> dict[str, Any]:
    return _by_url(each(proxies, lambda p: p.status()))


def _by_url(outcomes: Sequence[Outcome]) -> dict[str, Any]:
    return {o.proxy.url: o.answer if o.ok else {"error": str(o.error)} for o in outcomes}


def _marks_text(values: dict[int, int]) -> str:
    return ", ".join(f"[{p}] {v}" for p, v in sorted(values.items())) or "nothing"


__all__ = ["SIDES", "CutoverAborted", "CutoverFailed", "Direction", "SwitchResult", "backout", "cutover",
           "switch_traffic"]

"""Waiting for a replayer group to catch up: its consumer lag at or under a threshold, steadily.

The group's status (members and lag, ``group.ReplayerGroup.status``) is polled; catching up means the lag has stayed
at or under ``threshold`` records for ``steady_s`` seconds. Every poll is kept as an observation, so the wait
leaves a history of the lag (what the Dagster asset plots). A group whose members all died fails the wait at once,
with their logs' last lines; so does a wait longer than ``timeout_s``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from workers.common.errors import MigrationError


class CatchUpError(MigrationError):
    """The group did not catch up: every member died, or the wait timed out (the message says which)."""


@dataclass(frozen=True)
class LagPoint:
    """One observation of the group."""

    time: float
    lag: int
    time_lag_s: float | None
    documents_per_s: float
    alive: int


@dataclass
class CatchUp:
    """What the wait saw: every observation and the group's last status."""

    points: list[LagPoint] = field(default_factory=list)
    last: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0


def _point(status: dict[str, Any]) -> LagPoint:
    totals = status.get("totals", {})
    return LagPoint(time.time(), int(totals.get("total_lag", 0)), totals.get("time_lag_s"),
                    float(totals.get("documents_per_s", 0.0)), int(totals.get("alive", 0)))


def wait_for_catch_up(status: Callable[[], dict[str, Any]], *, threshold: int, steady_s: float, timeout_s: float,
                      poll_s: float = 2.0, progress: Callable[[LagPoint], None] | None = None) -> CatchUp:
    """Poll ``status()`` until the lag stayed at or under ``threshold`` for ``steady_s`` seconds."""
    result = CatchUp()
    started = time.monotonic()
    under_since: float | None = None
    while True:
        last = status()
        point = _point(last)
        result.points.append(point)
        result.last = last
        if progress is not None:
            progress(point)
        now = time.monotonic()
        if point.alive == 0:
            tails = [f"{m['name']}: {' | '.join(m.get('log_tail', [])[-5:])}" for m in last.get("members", [])]
            raise CatchUpError("every replayer of the group has stopped; " + ("; ".join(tails) or "no member ran"))
        if point.lag <= threshold:
            under_since = now if under_since is None else under_since
            if now - under_since >= steady_s:
                result.seconds = now - started
                return result
        else:
            under_since = None
        if now - started > timeout_s:
            raise CatchUpError(f"the replay's lag is still {point.lag} records (threshold {threshold}) after "
                               f"{timeout_s:g}s; the replayers keep running: see 'console replay status'")
        time.sleep(poll_s)

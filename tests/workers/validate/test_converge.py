"""The convergence rule alone: a difference that disappears on a recheck was in flight; one that stays is reported,
with its kind; the rechecks stop as soon as nothing differs."""

from __future__ import annotations

from workers.common.fingerprint import canonical_value
from workers.validate.converge import differing_ids, settle
from workers.validate.narrow import Docs


def _doc(value: int, routing: str | None = None) -> tuple[str | None, bytes]:
    return routing, canonical_value({"v": value})


def test_in_flight_differences_converge_and_persistent_ones_are_reported_by_kind() -> None:
    source: Docs = {"same": _doc(1), "new": _doc(2), "updated": _doc(4), "altered": _doc(5), "lost": _doc(6),
                    "rerouted": _doc(7, "a")}
    target: Docs = {"same": _doc(1), "updated": _doc(3), "altered": _doc(9), "gone": _doc(8), "extra": _doc(0),
                    "rerouted": _doc(7, "b")}
    assert differing_ids(source, target) == {"new", "updated", "altered", "lost", "gone", "extra", "rerouted"}
    # What the replayer does meanwhile: "new" and "updated" arrive on the target after the first recheck, "gone"
    # (deleted on the source in flight) after the second; the rest never changes.
    later_target = [
        {**target},
        {**target, "new": _doc(2), "updated": _doc(4)},
        {k: v for k, v in {**target, "new": _doc(2), "updated": _doc(4)}.items() if k != "gone"},
    ]
    source_now = {k: v for k, v in source.items()}
    calls: list[tuple[str, list[str]]] = []
    sleeps: list[float] = []

    def fetch_source(ids: list[str]) -> Docs:
        calls.append(("source", ids))
        return {i: source_now[i] for i in ids if i in source_now}

    def fetch_target(ids: list[str]) -> Docs:
        calls.append(("target", ids))
        state = later_target[min(len(sleeps) - 1, 2)]
        return {i: state[i] for i in ids if i in state}

    settled = settle("idx", source, target, fetch_source, fetch_target, settle_s=2.5, rechecks=5,
                     sleep=sleeps.append)
    assert settled.converged == 3  # new, updated, gone
    assert (settled.missing, settled.extra, settled.content) == (1, 1, 2)
    assert [(d.id, d.kind) for d in settled.differences] == [
        ("lost", "missing"), ("extra", "extra"), ("altered", "content differs"), ("rerouted", "content differs")]
    assert settled.differences[2].diff == ["v: 5 -> 9"]
    # Each recheck waits settle_s, reads only what still differs, the source before the target; five allowed,
    # but the persistent ones are looked at every time.
    assert sleeps == [2.5] * 5 and settled.rechecks == 5
    assert calls[0] == ("source", ["altered", "extra", "gone", "lost", "new", "rerouted", "updated"])
    assert calls[1][0] == "target" and calls[-1] == ("target", ["altered", "extra", "lost", "rerouted"])


def test_nothing_differing_needs_no_recheck_and_no_rechecks_reports_everything() -> None:
    same: Docs = {"a": _doc(1)}
    none = settle("idx", same, dict(same), lambda ids: {}, lambda ids: {}, settle_s=1, rechecks=3,
                  sleep=lambda s: None)
    assert (none.rechecks, none.converged, none.differences) == (0, 0, [])
    raw = settle("idx", same, {}, lambda ids: {}, lambda ids: {}, settle_s=1, rechecks=0, sleep=lambda s: None)
    assert (raw.missing, raw.converged, [d.kind for d in raw.differences]) == (1, 0, ["missing"])

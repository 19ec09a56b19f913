"""The adaptive in-flight limit: pure arithmetic, so exercised directly (the throttled-target test covers it live)."""

from __future__ import annotations

from workers.rfs.concurrency import AdaptiveLimit


def test_halves_once_per_congestion_episode() -> None:
    limit = AdaptiveLimit(10)
    started = limit.epoch
    for _ in range(5):  # five requests sent under the same limit all come back throttled
        limit.throttled(started)
    assert limit.limit == 5 and limit.cuts == 1
    limit.throttled(limit.epoch)  # a request sent after the cut is throttled too
    assert limit.limit == 2 and limit.lowest == 2


def test_grows_by_one_per_clean_round_up_to_the_maximum() -> None:
    limit = AdaptiveLimit(4)
    limit.throttled(limit.epoch)
    assert limit.limit == 2
    limit.succeeded()
    assert limit.limit == 2  # a round is `limit` clean requests
    limit.succeeded()
    assert limit.limit == 3
    for _ in range(20):
        limit.succeeded()
    assert limit.limit == 4


def test_never_below_one_and_fixed_when_not_adaptive() -> None:
    limit = AdaptiveLimit(3)
    for _ in range(10):
        limit.throttled(limit.epoch)
    assert limit.limit == 1
    fixed = AdaptiveLimit(3, adaptive=False)
    fixed.throttled(fixed.epoch)
    assert fixed.limit == 3 and fixed.cuts == 0

"""The adaptive in-flight limit: pure arithmetic, so exercised directly (the throttled-target test covers it live)."""

from __future__ import annotations

from workers.rfs.concurrency import AdaptiveLimit

MB = 1 << 20


def test_starts_at_one_and_grows_one_step_per_round_trip_while_nothing_queues() -> None:
    limit = AdaptiveLimit(4)
    assert limit.limit == 1
    limit.succeeded(limit.epoch, 0.5, 10 * MB)  # the unqueued latency: 0.05 s per MB
    assert limit.limit == 2
    began = limit.epoch
    limit.succeeded(began, 0.5, 10 * MB)
    limit.succeeded(began, 0.5, 10 * MB)  # sent under the old limit: says nothing about the new one
    assert limit.limit == 3
    for _ in range(5):
        limit.succeeded(limit.epoch, 0.5, 10 * MB)
    assert limit.limit == 4 and limit.highest == 4  # never above the maximum


def test_latency_growth_means_requests_queue_and_the_limit_comes_down() -> None:
    limit = AdaptiveLimit(10)
    limit.succeeded(limit.epoch, 0.4, 10 * MB)
    while limit.limit < 10:  # the target keeps up: latency stays at its floor
        limit.succeeded(limit.epoch, 0.4, 10 * MB)
    # Ten in flight, each answered in 2 s: 10 * (1 - 0.4/2) = 8 queued, more than 4: one step down per round trip.
    limit.succeeded(limit.epoch, 2.0, 10 * MB)
    assert limit.limit == 9 and limit.lowest == 9
    # Latency is judged per byte: a small request answered fast is not a queue-free sign for big ones.
    limit.succeeded(limit.epoch, 0.2, 1 * MB)  # 0.2 s per MB: 9 * (1 - 0.04/0.2) queued
    assert limit.limit == 8
    # Between the two thresholds the limit holds: 8 * (1 - 0.04/0.06) ~ 2.7 queued.
    limit.succeeded(limit.epoch, 0.6, 10 * MB)
    assert limit.limit == 8


def test_throttling_halves_once_per_congestion_episode() -> None:
    limit = AdaptiveLimit(10)
    while limit.limit < 10:
        limit.succeeded(limit.epoch, 0.4, 10 * MB)
    started = limit.epoch
    for _ in range(5):  # five requests sent under the same limit all come back throttled
        limit.throttled(started)
    assert limit.limit == 5 and limit.cuts == 1
    limit.throttled(limit.epoch)  # a request sent after the cut is throttled too
    assert limit.limit == 2 and limit.lowest == 2


def test_never_below_one_and_fixed_when_not_adaptive() -> None:
    limit = AdaptiveLimit(3)
    for _ in range(10):
        limit.throttled(limit.epoch)
        limit.succeeded(limit.epoch, 9.0, MB)
    assert limit.limit >= 1
    fixed = AdaptiveLimit(3, adaptive=False)
    assert fixed.limit == 3
    fixed.throttled(fixed.epoch)
    fixed.succeeded(fixed.epoch, 9.0, MB)
    assert fixed.limit == 3 and fixed.cuts == 0

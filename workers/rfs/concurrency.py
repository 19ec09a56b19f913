"""How many bulk requests may be in flight: adapted to the target's latency and throttling.

A bulk request's latency is the target's service time plus the time it queues behind the others in flight. Once
the target is busy, more requests in flight only queue longer: throughput stays flat while every request holds
its bytes in the target's heap longer (indexing pressure, garbage collection), which on a small target costs
throughput. So the limit follows the rule of TCP Vegas: from the lowest latency seen per byte (the target with
nothing queued) and the latest one, ``limit * (1 - lowest/latest)`` estimates how many requests are queued at the
target; the limit grows by one while fewer than ``queue_low`` are, and shrinks by one when more than
``queue_high`` are. It starts at one request, so that the first latency is an unqueued one.

Throttling (a 429, or items rejected with ``es_rejected_execution_exception``) halves the limit at once, as TCP
halves its window on loss: retrying each request alone would keep the pressure up.

Each change waits for the requests sent under it: a result from a request started before the latest change says
nothing about the new limit, so it moves the limit no further (one step per round trip).
"""

from __future__ import annotations

import threading


class AdaptiveLimit:
    """The in-flight limit shared by the pump (reads it) and the sender threads (report outcomes)."""

    def __init__(self, maximum: int, *, adaptive: bool = True, minimum: int = 1, queue_low: float = 2.0,
                 queue_high: float = 4.0) -> None:
        self.maximum = maximum
        self.minimum = min(minimum, maximum)
        self.adaptive = adaptive
        self.queue_low = queue_low
        self.queue_high = queue_high
        self.limit = self.minimum if adaptive else maximum
        self.highest = self.limit
        # The lowest limit a decrease (latency or throttling) led to; the maximum while none did.
        self.lowest = maximum
        self.cuts = 0
        # Bumped at every change of the limit; a request carries the epoch it started in.
        self.epoch = 0
        self._fastest: float | None = None  # seconds per byte
        self._lock = threading.Lock()

    def throttled(self, started_epoch: int) -> None:
        """A request begun in ``started_epoch`` was throttled (whole, or some of its items)."""
        if not self.adaptive:
            return
        with self._lock:
            if started_epoch != self.epoch:
                return  # sent before the latest change: the same congestion episode
            self._set(max(self.minimum, self.limit // 2))
            self.cuts += 1

    def succeeded(self, started_epoch: int, seconds: float, size: int) -> None:
        """A request of ``size`` body bytes, begun in ``started_epoch``, went through unthrottled in ``seconds``."""
        if not self.adaptive or size <= 0 or seconds <= 0:
            return
        with self._lock:
            per_byte = seconds / size
            if self._fastest is None or per_byte < self._fastest:
                self._fastest = per_byte
            if started_epoch != self.epoch:
                return
            queued = self.limit * (1.0 - self._fastest / per_byte)
            if queued < self.queue_low and self.limit < self.maximum:
                self._set(self.limit + 1)
            elif queued > self.queue_high and self.limit > self.minimum:
                self._set(self.limit - 1)

    def _set(self, limit: int) -> None:
        if limit < self.limit:
            self.lowest = min(self.lowest, limit)
        self.limit = limit
        self.highest = max(self.highest, limit)
        self.epoch += 1

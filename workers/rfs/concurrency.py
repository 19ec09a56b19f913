"""How many bulk requests may be in flight: adapted to the target's throttling (AIMD).

A target answers too much concurrent bulk work with 429s (rejected write-queue entries, or indexing-pressure
limits of about 10% of its heap in flight). Backing off each request alone keeps the pressure up: every retry
arrives with the others. So the limit halves when the target throttles and grows by one after a full round of
clean requests, the rule TCP congestion control uses; it settles just below what the target can take.
"""

from __future__ import annotations

import threading


class AdaptiveLimit:
    """The in-flight limit shared by the pump (reads it) and the sender threads (report outcomes)."""

    def __init__(self, maximum: int, *, adaptive: bool = True, minimum: int = 1) -> None:
        self.maximum = maximum
        self.minimum = min(minimum, maximum)
        self.adaptive = adaptive
        self.limit = maximum
        self.lowest = maximum
        self.cuts = 0
        # Requests started before the last cut were sent under the old limit: their throttles are the same
        # congestion episode and must not cut again.
        self.epoch = 0
        self._clean = 0
        self._lock = threading.Lock()

    def throttled(self, started_epoch: int) -> None:
        """A request begun in ``started_epoch`` was throttled (whole, or some of its items)."""
        if not self.adaptive:
            return
        with self._lock:
            self._clean = 0
            if started_epoch != self.epoch:
                return
            self.limit = max(self.minimum, self.limit // 2)
            self.lowest = min(self.lowest, self.limit)
            self.cuts += 1
            self.epoch += 1

    def succeeded(self) -> None:
        """A request went through without throttling."""
        if not self.adaptive:
            return
        with self._lock:
            self._clean += 1
            if self._clean >= self.limit and self.limit < self.maximum:
                self.limit += 1
                self._clean = 0

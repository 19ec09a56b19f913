"""Where a partition's committed offset may go: up to the lowest record whose transaction is not finished.

Every transaction is tracked from its first record's offset until it is finished (replayed, dead-lettered, or
abandoned as incomplete). The commit position is the lowest such offset, or the next offset to read when none is
unfinished. Records that finish nothing of their own (connection open and close) never hold a commit back. A slow
transaction holds back only its partition's position, and only until its own deadline (the replayer dead-letters it
then), so one stuck record never stalls commits for long, and never those of other partitions.
"""

from __future__ import annotations

import heapq
from collections.abc import Hashable


class PartitionOffsets:
    """Unfinished transactions of one partition, by the offset of their first record."""

    def __init__(self, start: int | None) -> None:
        # The next offset to read (everything below it has been seen); None until a record is read, when the start
        # is the consumer's to decide (a committed offset, or the reset policy).
        self.next_offset = start
        self._open: dict[Hashable, int] = {}
        self._heap: list[tuple[int, int, Hashable]] = []
        self._counter = 0
        self.committed = -1 if start is None else start

    def seen(self, offset: int) -> None:
        """A record at ``offset`` was read."""
        if self.next_offset is None or offset >= self.next_offset:
            self.next_offset = offset + 1

    def begin(self, key: Hashable, offset: int) -> None:
        """Transaction ``key`` starts at ``offset`` (its first record); a key already open keeps its first offset."""
        if key in self._open:
            return
        self._open[key] = offset
        self._counter += 1
        heapq.heappush(self._heap, (offset, self._counter, key))

    def is_open(self, key: Hashable) -> bool:
        """True while ``key`` is not finished."""
        return key in self._open

    def first_offset(self, key: Hashable) -> int | None:
        """The first record's offset of an unfinished transaction."""
        return self._open.get(key)

    def finish(self, key: Hashable) -> None:
        """Transaction ``key`` is finished (a key never begun, or finished twice, is ignored)."""
        self._open.pop(key, None)

    @property
    def unfinished(self) -> int:
        """Transactions begun and not finished."""
        return len(self._open)

    def position(self) -> int | None:
        """The offset that may be committed (every record below it belongs to finished work); None before any
        record was read."""
        heap = self._heap
        while heap:
            offset, _, key = heap[0]
            if self._open.get(key) == offset:
                return offset
            heapq.heappop(heap)
        return self.next_offset

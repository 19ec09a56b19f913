"""Checkpoints written off the hot path: the pump hands over the newest resume point and goes on sending.

A checkpoint is one small write to the coordination index on the target, which is busy with the bulk requests:
written in line it could wait seconds behind them while no new batch is sent. The writer thread always writes the
newest point handed over (older ones are skipped), so resuming may repeat a little work but never skips any.
"""

from __future__ import annotations

import threading
from typing import Any

from workers.documents.reader import ShardPosition
from workers.rfs.coordination import WorkCoordinator


class CheckpointWriter:
    """One background thread writing the latest (position, documents, bytes) handed over."""

    def __init__(self, coordinator: WorkCoordinator) -> None:
        self.coordinator = coordinator
        self._pending: tuple[ShardPosition, int, int, dict[str, Any] | None] | None = None
        self._error: BaseException | None = None
        self._closing = False
        self._cond = threading.Condition()
        self._thread = threading.Thread(target=self._run, name="checkpoints", daemon=True)
        self._thread.start()

    def submit(self, position: ShardPosition, docs: int, nbytes: int,
               fingerprint: dict[str, Any] | None = None) -> None:
        """Hand over a newer resume point (and the fingerprint of the documents before it); raises what a previous
        write failed with (a lost lease)."""
        with self._cond:
            if self._error is not None:
                raise self._error
            self._pending = (position, docs, nbytes, fingerprint)
            self._cond.notify()

    def _run(self) -> None:
        while True:
            with self._cond:
                while self._pending is None and not self._closing:
                    self._cond.wait()
                if self._pending is None:
                    return
                position, docs, nbytes, fingerprint = self._pending
                self._pending = None
            try:
                self.coordinator.checkpoint(position, docs, nbytes, fingerprint)
            except BaseException as exc:
                with self._cond:
                    self._error = exc
                return

    def close(self) -> None:
        """Write what is still pending, stop the thread, and raise a write's failure."""
        with self._cond:
            self._closing = True
            self._cond.notify()
        self._thread.join()
        if self._error is not None:
            raise self._error

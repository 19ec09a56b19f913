"""Writers of tuples: Parquet files rolled by size and age, or nothing but counts.

Rows are buffered and written as one record batch (one row group) once they hold ``batch_bytes``, so memory stays
bounded whatever the traffic. A file is finished and published when it reaches ``max_file_bytes``, when it is
``roll_interval_s`` old (checked on :meth:`TupleSink.add` and :meth:`TupleSink.tick`), and on every
:meth:`TupleSink.flush`: after ``flush`` every row added so far is in a published file, so the replayer may commit
its Kafka offsets.

Files are named ``tuples-<UTC time of their first row>-<writer id>-<sequence>.parquet``: names sort by time, and
the writer id (host, process and a random part by default) keeps several replayers from ever colliding.
"""

from __future__ import annotations

import os
import re
import secrets
import socket
import threading
import time
from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from workers.replay.compare import Comparison
from workers.replay.messages import ReplayedTransaction
from workers.replay.tuples.location import SUFFIX, TupleLocation, TupleStoreError, open_location
from workers.replay.tuples.schema import DEFAULT_MAX_BODY_BYTES, SCHEMA, row_bytes, tuple_row

DEFAULT_MAX_FILE_BYTES = 64 << 20
DEFAULT_ROLL_INTERVAL_S = 60.0
DEFAULT_BATCH_BYTES = 8 << 20
_KEEP_PUBLISHED = 100


class TupleSink(ABC):
    """Receives every replayed transaction with its comparison; counts what it got."""

    location: str = "off"

    def __init__(self) -> None:
        self.rows = 0
        self.kinds: Counter[str] = Counter()

    @abstractmethod
    def add(self, tx: ReplayedTransaction, comparison: Comparison) -> None:
        """Take one tuple."""

    def flush(self) -> None:  # noqa: B027 - optional: a sink that keeps nothing has nothing to flush
        """Make every tuple taken so far durable."""

    def tick(self) -> None:  # noqa: B027 - optional: only a rolling writer has anything due
        """Do what time has made due (roll an old file) while no tuples arrive."""

    def close(self) -> None:
        """Flush; the sink takes no more tuples."""
        self.flush()


class NullTupleWriter(TupleSink):
    """Keeps no tuples, only their count per comparison kind."""

    def add(self, tx: ReplayedTransaction, comparison: Comparison) -> None:
        self.rows += 1
        self.kinds[comparison.kind] += 1


def default_writer_id() -> str:
    """``host-pid-random``: unique among the replayers writing to one location."""
    return f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(3)}"


def _safe(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", text).strip("-.") or "writer"


class TupleWriter(TupleSink):
    """Writes tuples as Parquet files (see :data:`~workers.replay.tuples.schema.SCHEMA`) to a local folder or to
    ``s3://bucket/prefix``; safe to call from several threads."""

    def __init__(self, location: str | Path | TupleLocation, *, writer_id: str | None = None,
                 max_body_bytes: int = DEFAULT_MAX_BODY_BYTES, max_file_bytes: int = DEFAULT_MAX_FILE_BYTES,
                 roll_interval_s: float = DEFAULT_ROLL_INTERVAL_S, batch_bytes: int = DEFAULT_BATCH_BYTES,
                 s3_endpoint: str | None = None, s3_region: str | None = None, spool_dir: Path | None = None,
                 compression: str = "zstd", clock: Callable[[], float] = time.time) -> None:
        super().__init__()
        self.store = location if isinstance(location, TupleLocation) else open_location(
            location, s3_endpoint=s3_endpoint, s3_region=s3_region, spool_dir=spool_dir)
        self.location = self.store.uri
        self.writer_id = _safe(writer_id or default_writer_id())
        self.max_body_bytes = max_body_bytes
        self.max_file_bytes = max_file_bytes
        self.roll_interval_s = roll_interval_s
        self.batch_bytes = batch_bytes
        self.compression = compression
        self.clock = clock
        # Where the latest finished files went, and how many there were in all.
        self.published: list[str] = []
        self.files_published = 0
        self._lock = threading.Lock()
        self._buffer: list[dict[str, Any]] = []
        self._buffered_bytes = 0
        self._sequence = 0
        self._closed = False
        # The file being filled: its name, staging path, sink and Parquet writer; the time of its first row.
        self._started: float | None = None
        self._name = ""
        self._staged: Path | None = None
        self._sink: pa.NativeFile | None = None
        self._writer: pq.ParquetWriter | None = None

    def add(self, tx: ReplayedTransaction, comparison: Comparison) -> None:
        row = tuple_row(tx, comparison, self.max_body_bytes)
        with self._lock:
            if self._closed:
                raise TupleStoreError(f"tuple writer for {self.location} is closed")
            now = self.clock()
            if self._started is None:
                self._started = now
            self._buffer.append(row)
            self._buffered_bytes += row_bytes(row)
            self.rows += 1
            self.kinds[comparison.kind] += 1
            if now - self._started >= self.roll_interval_s:
                self._write_batch()
                self._finish()
            elif self._buffered_bytes >= self.batch_bytes:
                self._write_batch()
                if self._sink is not None and self._sink.tell() >= self.max_file_bytes:
                    self._finish()

    def tick(self) -> None:
        with self._lock:
            if self._started is not None and self.clock() - self._started >= self.roll_interval_s:
                self._write_batch()
                self._finish()

    def flush(self) -> None:
        with self._lock:
            self._write_batch()
            self._finish()

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._write_batch()
            self._finish()
            self._closed = True

    @property
    def buffered_rows(self) -> int:
        """Rows taken but not yet in a record batch."""
        return len(self._buffer)

    def _write_batch(self) -> None:
        if not self._buffer:
            return
        batch = pa.RecordBatch.from_pylist(self._buffer, schema=SCHEMA)
        if self._writer is None:
            self._open()
        assert self._writer is not None
        self._writer.write_batch(batch)
        self._buffer = []
        self._buffered_bytes = 0

    def _open(self) -> None:
        started = self._started if self._started is not None else self.clock()
        stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime(started)) + f"{int(started * 1000) % 1000:03d}Z"
        self._sequence += 1
        self._name = f"tuples-{stamp}-{self.writer_id}-{self._sequence:06d}{SUFFIX}"
        self._staged = self.store.staging_path(self._name)
        self._sink = pa.OSFile(str(self._staged), "wb")
        self._writer = pq.ParquetWriter(self._sink, SCHEMA, compression=self.compression)

    def _finish(self) -> None:
        """Close the current file and publish it (nothing to do when no row was written to it); called with the
        buffer empty."""
        self._started = None
        if self._writer is None or self._sink is None or self._staged is None:
            return
        self._writer.close()
        self._sink.close()
        self._writer = self._sink = None
        staged, self._staged = self._staged, None
        self.published.append(self.store.publish(staged, self._name))
        self.files_published += 1
        # The latest files only: a replayer runs for weeks.
        del self.published[:-_KEEP_PUBLISHED]


def open_tuple_writer(location: str | None, **options: Any) -> TupleSink:
    """A :class:`TupleWriter` for ``location`` (options as its keyword arguments), or a :class:`NullTupleWriter`
    when ``location`` is empty, ``off`` or ``none``."""
    if not location or location.lower() in ("off", "none", "false"):
        return NullTupleWriter()
    return TupleWriter(location, **options)

"""A shard's checksum pass on a thread, segment by segment in the order the reader reads them.

Verifying every file before the first document leaves the target idle for as long as the pass reads the whole
shard (seconds per shard, cold, on this kind of machine; more from S3). Run alongside, the reader waits only for
the files of the segment it is about to read: no document comes from a file not yet verified, and the shard is
finished only once every one of its files is.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence

from workers.snapshot.repository import ShardFile
from workers.snapshot.shard_directory import ShardDirectory


def segment_of(name: str) -> str | None:
    """The segment a Lucene file belongs to (``_0`` for ``_0.cfs``, ``_0_1.liv``, ``_0_Lucene90_0.doc``), or None
    for a commit-level file (``segments_N``)."""
    if not name.startswith("_") or len(name) < 2:
        return None
    stem = name[1:].split(".", 1)[0]
    return "_" + stem.split("_", 1)[0]


class BackgroundVerifier:
    """Verifies a shard's files on a daemon thread: commit-level files first, then each segment of ``order``, then
    the files of any segment not in ``order``. The first failure stops it, and is raised by every later wait."""

    def __init__(self, directory: ShardDirectory, files: Sequence[ShardFile], order: Sequence[str]) -> None:
        by_segment: dict[str | None, list[ShardFile]] = {None: []}
        for segment in order:
            by_segment.setdefault(segment, [])
        for entry in files:
            by_segment.setdefault(segment_of(entry.physical_name), []).append(entry)
        self._groups = list(by_segment.items())
        self._directory = directory
        self._verified: set[str | None] = set()
        self._error: BaseException | None = None
        self._finished = False
        self._complete = False
        self._stopping = False
        self._changed = threading.Condition()
        self._thread = threading.Thread(target=self._run, name=f"verify-{directory.label}", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            for segment, entries in self._groups:
                for entry in entries:
                    if self._stopping:
                        return
                    self._directory.verify(entry)
                with self._changed:
                    self._verified.add(segment)
                    self._changed.notify_all()
            self._complete = True
        except BaseException as exc:  # handed to the reader's thread, which raises it
            with self._changed:
                self._error = exc
        finally:
            with self._changed:
                self._finished = True
                self._changed.notify_all()

    def _wait(self, done: Callable[[], bool], what: str) -> None:
        with self._changed:
            while not done():
                if self._error is not None:
                    raise self._error
                if self._finished:
                    raise RuntimeError(f"{self._directory.label}: the checksum pass was stopped before {what}")
                self._changed.wait()

    def wait_for(self, segment: str) -> None:
        """Return once ``segment``'s files (and every file verified before them) are verified; raise the pass's
        error if one of them failed."""
        self._wait(lambda: segment in self._verified, f"segment {segment}")

    def wait_all(self) -> None:
        """Return once every file is verified; raise the pass's error if one failed."""
        self._wait(lambda: self._complete, "the end")

    def stop(self) -> None:
        """Stop after the file being verified (a failed or abandoned read); does not wait for the thread."""
        self._stopping = True

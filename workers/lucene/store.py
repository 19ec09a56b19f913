"""Random-access views of Lucene files, wherever their bytes live (memory, a blob store, a compound file)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable

from workers.lucene.errors import LuceneFormatError

RangeReader = Callable[[int, int], bytes]


class FileInput(ABC):
    """A Lucene file: a name, a length and positioned reads."""

    def __init__(self, name: str, length: int) -> None:
        self.name = name
        self.length = length

    @abstractmethod
    def _read(self, offset: int, n: int) -> bytes | memoryview:
        """Read exactly ``n`` bytes at ``offset`` (bounds already checked)."""

    def read_at(self, offset: int, n: int) -> bytes | memoryview:
        """``n`` bytes at ``offset``; an error naming the file if that runs past its end."""
        if offset < 0 or n < 0 or offset + n > self.length:
            raise LuceneFormatError(
                f"{self.name}: structure: read of {n} bytes at offset {offset} past the end ({self.length} bytes)"
            )
        return self._read(offset, n)

    def read_all(self) -> bytes | memoryview:
        """The whole file (only for small files: commits, segment infos, field infos, live docs, metadata)."""
        return self.read_at(0, self.length)

    def slice(self, name: str, offset: int, length: int) -> FileInput:
        """A sub-file (a compound file's entry)."""
        if offset < 0 or length < 0 or offset + length > self.length:
            raise LuceneFormatError(f"{self.name}: structure: entry {name} [{offset}, +{length}) outside the file")
        return SliceInput(name, self, offset, length)


class BytesInput(FileInput):
    """A file held in memory."""

    def __init__(self, name: str, data: bytes | memoryview) -> None:
        super().__init__(name, len(data))
        self.data = memoryview(data)

    def _read(self, offset: int, n: int) -> memoryview:
        return self.data[offset : offset + n]


class RangeInput(FileInput):
    """A file read by ranges through a callable (a blob store's ranged GET, a local pread)."""

    def __init__(self, name: str, length: int, read_range: RangeReader) -> None:
        super().__init__(name, length)
        self._range = read_range

    def _read(self, offset: int, n: int) -> bytes:
        data = self._range(offset, n)
        if len(data) != n:
            raise LuceneFormatError(f"{self.name}: structure: asked {n} bytes at {offset}, got {len(data)}")
        return data


class SliceInput(FileInput):
    """A window of another file."""

    def __init__(self, name: str, parent: FileInput, offset: int, length: int) -> None:
        super().__init__(name, length)
        self.parent = parent
        self.offset = offset

    def _read(self, offset: int, n: int) -> bytes | memoryview:
        return self.parent.read_at(self.offset + offset, n)

    def slice(self, name: str, offset: int, length: int) -> FileInput:
        if offset < 0 or length < 0 or offset + length > self.length:
            raise LuceneFormatError(f"{self.name}: structure: entry {name} [{offset}, +{length}) outside the file")
        return SliceInput(name, self.parent, self.offset + offset, length)


class MultiPartInput(FileInput):
    """A file stored as consecutive parts of ``part_size`` bytes (snapshot ``.partN`` blobs)."""

    def __init__(self, name: str, length: int, part_size: int, parts: list[RangeReader]) -> None:
        super().__init__(name, length)
        self.part_size = part_size
        self.parts = parts

    def _read(self, offset: int, n: int) -> bytes:
        out = bytearray()
        while n > 0:
            index, inner = divmod(offset, self.part_size)
            take = min(n, self.part_size - inner)
            out += self.parts[index](inner, take)
            offset += take
            n -= take
        return bytes(out)


class Directory(ABC):
    """The files of one Lucene index (a shard), by name."""

    @abstractmethod
    def open(self, name: str) -> FileInput:
        """Open a file; an error naming it when absent."""

    @abstractmethod
    def names(self) -> list[str]:
        """Every file name."""


class SequentialReader:
    """Forward-only reading of a file through a bounded window, for streaming large files."""

    def __init__(self, inp: FileInput, start: int, end: int, window: int = 4 << 20) -> None:
        self.inp = inp
        self.pos = start
        self.end = end
        self.window = window
        self.buf: bytes | memoryview = b""
        self.buf_start = start

    def ensure(self, n: int) -> tuple[bytes | memoryview, int]:
        """Make the next ``n`` bytes available; returns (buffer, offset of the current position in it)."""
        rel = self.pos - self.buf_start
        if rel + n <= len(self.buf):
            return self.buf, rel
        if self.pos + n > self.end:
            n = self.end - self.pos
            if n < 0:
                raise LuceneFormatError(f"{self.inp.name}: structure: read past the end of the data")
        take = min(max(n, self.window), self.end - self.pos)
        self.buf = self.inp.read_at(self.pos, take)
        self.buf_start = self.pos
        return self.buf, 0

    def read(self, n: int) -> bytes | memoryview:
        """The next ``n`` bytes."""
        if self.pos + n > self.end:
            raise LuceneFormatError(
                f"{self.inp.name}: structure: needs {n} bytes at offset {self.pos}, data ends at {self.end}"
            )
        buf, rel = self.ensure(n)
        self.pos += n
        return buf[rel : rel + n]

    def vint(self) -> int:
        """The next VInt/VLong."""
        buf, rel = self.ensure(min(10, self.end - self.pos))
        value = 0
        shift = 0
        i = rel
        while True:
            if i >= len(buf):
                raise LuceneFormatError(f"{self.inp.name}: structure: truncated VInt at offset {self.pos}")
            b = buf[i]
            i += 1
            value |= (b & 0x7F) << shift
            if b < 0x80:
                break
            shift += 7
            if shift > 63:
                raise LuceneFormatError(f"{self.inp.name}: structure: bad VLong at offset {self.pos}")
        self.pos += i - rel
        return value

    def byte(self) -> int:
        """The next byte."""
        return self.read(1)[0]

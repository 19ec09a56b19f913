"""A shard's Lucene files read straight from the snapshot's blobs (no local copy of the shard)."""

from __future__ import annotations

import zlib

from workers.lucene.codec import FOOTER_LENGTH, base36, check_footer, footer_checksum
from workers.lucene.errors import ChecksumError, LuceneFormatError
from workers.lucene.store import BytesInput, Directory, FileInput, MultiPartInput, RangeInput, RangeReader
from workers.snapshot.blobstore import BlobStore, BlobStoreError
from workers.snapshot.repository import ShardFile, ShardSnapshot

_VERIFY_WINDOW = 8 << 20


class ShardDirectory(Directory):
    """The files of one shard snapshot, by physical name, read by ranges from the blob store."""

    def __init__(self, store: BlobStore, shard: ShardSnapshot) -> None:
        self.store = store
        self.shard = shard
        self.files = {f.physical_name: f for f in shard.files}
        self.label = f"snapshot {shard.snapshot} index {shard.index} shard {shard.shard}"

    def names(self) -> list[str]:
        return sorted(self.files)

    def _reader(self, key: str, label: str) -> RangeReader:
        def read(offset: int, n: int) -> bytes:
            try:
                return self.store.read_range(key, offset, n)
            except BlobStoreError as exc:
                # A blob shorter than the file list says, or gone: name the Lucene file, not just the blob.
                raise LuceneFormatError(f"{label}: structure: {exc}") from None

        return read

    def open(self, name: str) -> FileInput:
        entry = self.files.get(name)
        if entry is None:
            raise LuceneFormatError(f"{self.label}: Lucene file {name} is not in the snapshot's file list")
        label = f"{self.label} file {name}"
        if entry.is_virtual:
            if entry.meta_hash is None or len(entry.meta_hash) != entry.length:
                raise LuceneFormatError(f"{label}: virtual file without its full content in the shard metadata")
            return BytesInput(label, entry.meta_hash)
        keys = [f"{self.shard.path}/{part}" for part in entry.part_names]
        if len(keys) == 1:
            return RangeInput(label, entry.length, self._reader(keys[0], label))
        return MultiPartInput(label, entry.length, entry.part_size, [self._reader(k, label) for k in keys])

    def verify(self, entry: ShardFile) -> None:
        """Check a file against its footer CRC and the checksum the snapshot recorded, reading it once."""
        inp = self.open(entry.physical_name)
        if entry.length < FOOTER_LENGTH:
            raise LuceneFormatError(f"{inp.name}: structure: {entry.length} bytes is too short for a Lucene file")
        if entry.is_virtual:
            data = inp.read_all()
            check_footer(data, inp.name)
            recorded = footer_checksum(data)
        else:
            crc = 0
            offset = 0
            body_end = entry.length - 8
            while offset < body_end:
                n = min(_VERIFY_WINDOW, body_end - offset)
                crc = zlib.crc32(inp.read_at(offset, n), crc)
                offset += n
            tail = inp.read_at(entry.length - FOOTER_LENGTH, FOOTER_LENGTH)
            check_footer_tail = bytes(tail)
            if int.from_bytes(check_footer_tail[:4], "big") != 0xC02893E8:
                raise LuceneFormatError(f"{inp.name}: structure: no Lucene footer at the end (truncated?)")
            recorded = int.from_bytes(check_footer_tail[8:], "big")
            if crc != recorded:
                raise ChecksumError(f"{inp.name}: checksum mismatch (footer {recorded:#010x}, content {crc:#010x})")
        if entry.checksum and base36(recorded) != entry.checksum:
            raise ChecksumError(
                f"{inp.name}: footer checksum {base36(recorded)} differs from the snapshot's record {entry.checksum}"
            )

    def verify_all(self) -> None:
        """Verify every file of the shard."""
        for entry in self.shard.files:
            self.verify(entry)

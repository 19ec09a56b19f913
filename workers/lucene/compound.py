"""Compound files: ``.cfe`` lists the entries that ``.cfs`` holds (Lucene50 big-endian, Lucene90 little-endian)."""

from __future__ import annotations

from workers.lucene.codec import VersionRanges, check_footer, read_index_header
from workers.lucene.datainput import DataInput
from workers.lucene.errors import LuceneFormatError
from workers.lucene.store import Directory, FileInput

# Lucene50CompoundFormat (Lucene 5-8) and Lucene90CompoundFormat write both files of the pair with VERSION_START =
# VERSION_CURRENT = 0; like Lucene's CompoundReaders, the .cfs header must be of the .cfe's family and version.
ENTRY_VERSIONS: VersionRanges = {"Lucene50CompoundEntries": (0, 0), "Lucene90CompoundEntries": (0, 0)}
DATA_VERSIONS: VersionRanges = {"Lucene50CompoundData": (0, 0), "Lucene90CompoundData": (0, 0)}
_HEADER_PROBE = 128


class CompoundDirectory(Directory):
    """The sub-files of one compound segment, named as outside it (``_0.fdt``), backed by slices of ``.cfs``."""

    def __init__(self, segment: str, entries_file: FileInput, data_file: FileInput, outer: Directory) -> None:
        raw = entries_file.read_all()
        check_footer(raw, entries_file.name)
        din = DataInput(raw, entries_file.name)
        entries = read_index_header(din, expected=ENTRY_VERSIONS)
        data_codec = entries.codec.replace("Entries", "Data")
        probe = DataInput(data_file.read_at(0, min(data_file.length, _HEADER_PROBE)), data_file.name)
        data = read_index_header(probe, expected={data_codec: DATA_VERSIONS[data_codec]})
        if (data.version, data.object_id) != (entries.version, entries.object_id):
            raise LuceneFormatError(
                f"{data_file.name}: structure: version {data.version} of segment id {data.object_id.hex()}, but "
                f"{entries_file.name} is version {entries.version} of segment id {entries.object_id.hex()}"
            )
        self.segment = segment
        self.entries: dict[str, tuple[int, int]] = {}
        for _ in range(din.vint()):
            # Entry names omit the segment name: ".fdt", "_Lucene80_0.dvm".
            name = segment + din.string()
            offset = din.int64()
            length = din.int64()
            self.entries[name] = (offset, length)
        self.data_file = data_file
        self.outer = outer

    def open(self, name: str) -> FileInput:
        if name in self.entries:
            offset, length = self.entries[name]
            return self.data_file.slice(f"{self.data_file.name}:{name}", offset, length)
        # Generation files (.liv, updated .fnm and doc values) always live outside the compound file.
        return self.outer.open(name)

    def names(self) -> list[str]:
        return sorted(set(self.entries) | set(self.outer.names()))

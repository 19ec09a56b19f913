"""Compound files: ``.cfe`` lists the entries that ``.cfs`` holds (Lucene50 big-endian, Lucene90 little-endian)."""

from __future__ import annotations

from workers.lucene.codec import check_footer, read_index_header
from workers.lucene.datainput import DataInput
from workers.lucene.store import Directory, FileInput

ENTRY_CODECS = ("Lucene50CompoundEntries", "Lucene90CompoundEntries")


class CompoundDirectory(Directory):
    """The sub-files of one compound segment, named as outside it (``_0.fdt``), backed by slices of ``.cfs``."""

    def __init__(self, segment: str, entries_file: FileInput, data_file: FileInput, outer: Directory) -> None:
        data = entries_file.read_all()
        check_footer(data, entries_file.name)
        din = DataInput(data, entries_file.name)
        read_index_header(din, expected=ENTRY_CODECS)
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

"""``segments_N``: the commit that lists a shard's segments (big-endian in every Lucene version; formats 6-10)."""

from __future__ import annotations

from dataclasses import dataclass, field

from workers.lucene.codec import VersionRanges, check_footer, read_index_header
from workers.lucene.datainput import DataInput
from workers.lucene.errors import UnsupportedFormatError
from workers.lucene.store import FileInput

# SegmentInfos' formats: VERSION_53 = 6 (Lucene 6.x), VERSION_70 = 7 (7.0), VERSION_72 = 8 (7.2, a VLong segment
# counter), VERSION_74 = 9 (7.4, soft-delete counts), VERSION_86 = 10 (8.6 to 10.5, segment commit ids).
# Lucene's VERSION_10_6 = 11 adds per-field doc-values overlays after each segment, which this reader does not
# decode. Older formats (4 and 5) are Lucene 5's.
VERSIONS: VersionRanges = {"segments": (6, 10)}


@dataclass(frozen=True)
class SegmentCommitInfo:
    """One segment as the commit records it."""

    name: str
    segment_id: bytes
    codec: str
    del_gen: int
    del_count: int
    field_infos_gen: int
    doc_values_gen: int
    soft_del_count: int
    field_infos_files: tuple[str, ...] = ()
    dv_update_files: dict[int, tuple[str, ...]] = field(default_factory=dict)


@dataclass(frozen=True)
class SegmentInfos:
    """A commit: its Lucene version, format and segments (sorted by name for a stable reading order)."""

    generation: int
    format: int
    lucene_version: tuple[int, int, int]
    segments: tuple[SegmentCommitInfo, ...]
    user_data: dict[str, str]


def read_segment_infos(inp: FileInput) -> SegmentInfos:
    """Parse a ``segments_N`` file (footer checked first)."""
    data = inp.read_all()
    check_footer(data, inp.name)
    din = DataInput(data, inp.name)
    header = read_index_header(din, expected=VERSIONS)
    fmt = header.version
    din.set_little_endian(False)
    version = (din.vint(), din.vint(), din.vint())
    if fmt >= 7:
        din.vint()  # index created version major
    din.int64()  # version
    if fmt <= 7:
        din.int32()
    else:
        din.vlong()  # counter
    count = din.int32()
    if count > 0:
        din.vint(), din.vint(), din.vint()  # min segment version
    segments = []
    for _ in range(count):
        name = din.string()
        if fmt < 7 and din.byte() != 1:
            raise UnsupportedFormatError(f"{inp.name}: segment {name} has no id (Lucene < 5.3 segment)")
        seg_id = din.bytes(16)
        codec = din.string()
        del_gen = din.int64()
        del_count = din.int32()
        fi_gen = din.int64()
        dv_gen = din.int64()
        soft = din.int32() if fmt >= 9 else 0
        if fmt >= 10 and din.byte() == 1:
            din.bytes(16)  # segment commit id
        fi_files = tuple(din.string_set())
        dv_updates = {}
        for _ in range(din.int32()):
            number = din.int32()
            dv_updates[number] = tuple(din.string_set())
        segments.append(SegmentCommitInfo(name, seg_id, codec, del_gen, del_count, fi_gen, dv_gen, soft,
                                          fi_files, dv_updates))
    user_data = din.string_map()
    generation = int(header.suffix, 36) if header.suffix else 0
    ordered = tuple(sorted(segments, key=lambda s: (len(s.name), s.name)))
    return SegmentInfos(generation, fmt, version, ordered, user_data)

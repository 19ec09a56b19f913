"""A JVM-free reader of Lucene index files: commits, segments, compound files, field infos, live docs,
soft deletes and stored fields. One reader per format version, chosen by each file's codec header; a codec version
outside the range a reader states it decodes is refused (UnsupportedFormatError), as Lucene's CodecUtil does.
Layouts: Lucene's codec sources of each version (SegmentInfos, the SegmentInfo, Compound, FieldInfos, LiveDocs,
DocValues and StoredFields formats, CodecUtil).
"""

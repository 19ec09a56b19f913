"""Errors of the Lucene reader; each names the file at fault."""

from __future__ import annotations

from workers.common.errors import MigrationError


class LuceneFormatError(MigrationError):
    """A Lucene file's structure is not what its format says (truncated, altered, or misread)."""


class ChecksumError(LuceneFormatError):
    """A Lucene file's footer checksum does not match its content."""


class UnsupportedFormatError(MigrationError):
    """A codec or format version this reader does not know."""

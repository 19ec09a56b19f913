"""One shard of a snapshot's index as the workflow names it: the partition key ``index:shard``.

The key is built once (``workers.prepare.snapshot`` lists the shards in scope) and parsed wherever a partition
key comes back: the ``shard_backfill`` asset, the worker under Dagster Pipes, the ``workflow`` commands' phase
names, the shard workers' log file names. Elasticsearch 7+ forbids ':' in index names, but 5.x/6.x indices
could hold one, so a key is split at its last ':' (a shard number never contains one).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from workers.common.errors import ConfigurationError

# ASCII digits without a leading zero (str.isdigit would take '²'): parse(text).format() == text.
_SHARD_NUMBER = re.compile(r"0|[1-9][0-9]*")
_EXAMPLE = "INDEX:SHARD with SHARD a shard number, e.g. logs-2024:0"


@dataclass(frozen=True, order=True)
class ShardKey:
    """Shard ``shard`` (0, 1, ...) of source index ``index``; ordered by index, then shard number."""

    index: str
    shard: int

    def __post_init__(self) -> None:
        problem = _problem(self.index, self.shard)
        if problem:
            raise ConfigurationError(f"shard key ({self.index!r}, {self.shard!r}): {problem}")

    @classmethod
    def parse(cls, text: str) -> ShardKey:
        """The key ``text`` names (``index:shard``, split at the last ':'); ConfigurationError quoting it otherwise."""
        index, sep, shard = text.rpartition(":")
        if not sep:
            raise ConfigurationError(f"shard key {text!r} has no ':'; expected {_EXAMPLE}")
        if not index:
            raise ConfigurationError(f"shard key {text!r} has no index name; expected {_EXAMPLE}")
        if not _SHARD_NUMBER.fullmatch(shard):
            raise ConfigurationError(f"shard key {text!r}: {shard!r} is not a shard number (a non-negative integer "
                                     f"without leading zeros); expected {_EXAMPLE}")
        problem = _problem(index, int(shard))
        if problem:
            raise ConfigurationError(f"shard key {text!r}: {problem}")
        return cls(index, int(shard))

    def format(self) -> str:
        """``index:shard``, the partition key."""
        return f"{self.index}:{self.shard}"

    def __str__(self) -> str:
        return self.format()

    def file_name(self, suffix: str = ".log") -> str:
        """A file name for the shard (its worker's log): ``index-shard.log``, the ':' being unsafe on some
        filesystems."""
        return f"{self.index}-{self.shard}{suffix}"


def _problem(index: str, shard: int) -> str | None:
    """Why (index, shard) is not a shard, or None."""
    if not index:
        return "the index name is empty"
    if "/" in index or "\\" in index:
        # No engine allows these in an index name, and file_name() must stay one path component.
        return f"index name {index!r} contains '/' or '\\'"
    if isinstance(shard, bool) or not isinstance(shard, int) or shard < 0:
        return f"the shard must be a non-negative integer, not {shard!r}"
    return None

"""What the replayer's transform pipeline does: the target, the metadata migration's renames and type mode, user
transforms, compression."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from pydantic import ConfigDict

from workers.common.clusters import ClusterConnection
from workers.common.errors import ConfigurationError
from workers.metadata.rename import RenameRules

TYPE_MODES = ("drop", "index-per-type", "restore")


@dataclass(frozen=True)
class TransformOptions:
    """The transform pipeline's options (``TransformPipeline.build`` reads them)."""

    __pydantic_config__ = ConfigDict(extra="forbid")

    target: ClusterConnection
    # The metadata migration's own rules (same syntax, same matching), so requests reach the indices it created.
    rename: RenameRules = field(default_factory=RenameRules)
    # Elasticsearch <= 6 types: "drop" (one index, types merged) or "index-per-type" (type T of multi-type index I
    # goes to i_t), as the metadata migration and the backfill were run; "restore" is the reverse replayer's (after a
    # cutover, typeless writes to the target applied to an Elasticsearch 5/6 source: ``restore_types``).
    type_mode: str = "drop"
    # index-per-type: the mapping types of each source index (what the snapshot's index metadata lists, as the
    # backfill reads it); an index with two or more is split, one not listed here is not (its types are dropped).
    split_types: dict[str, frozenset[str]] = field(default_factory=dict)
    # restore: the mapping type of each source index (by its source name); indices not listed stay typeless.
    restore_types: dict[str, str] = field(default_factory=dict)
    # Functions ``package.module:function`` run on each request, in order, before the built-in steps.
    user_transforms: Sequence[str] = ()
    # Send request bodies gzip'd (Content-Encoding: gzip).
    gzip_target: bool = False

    def __post_init__(self) -> None:
        if self.type_mode not in TYPE_MODES:
            raise ConfigurationError(f"type_mode must be drop, index-per-type or restore, not {self.type_mode!r}")
        if self.restore_types and self.type_mode != "restore":
            raise ConfigurationError(f"restore_types is for type_mode restore (not {self.type_mode!r})")

"""Which target index a source index's documents go to: the metadata migration's rename rules and type split."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from workers.common.index_names import split_index_name, split_types
from workers.metadata.rename import RenameRules
from workers.snapshot.repository import SnapshotRepository


@dataclass(frozen=True)
class TargetNames:
    """The target names of one source index's documents."""

    rename: RenameRules = field(default_factory=RenameRules)
    # The mapping types that have an index of their own (type mode index-per-type on a multi-type index).
    split: frozenset[str] = frozenset()

    @classmethod
    def of_index(cls, rename: RenameRules, type_mode: str, type_names: Iterable[str]) -> TargetNames:
        """Names for an index with these mapping types (from the snapshot's index metadata)."""
        return cls(rename, split_types(type_names) if type_mode == "index-per-type" else frozenset())

    def name(self, index: str, type_name: str | None) -> str:
        """Where a document of ``type_name`` (None when typeless) of ``index`` goes."""
        base = split_index_name(index, type_name) if type_name in self.split else index
        return self.rename.apply(base)

    def every(self, index: str) -> list[str]:
        """Every target index that documents of ``index`` go to."""
        if not self.split:
            return [self.name(index, None)]
        return sorted({self.name(index, t) for t in self.split})


def target_indices(repo: SnapshotRepository, snapshot: str, indices: Iterable[str], rename: RenameRules,
                   type_mode: str) -> dict[str, list[str]]:
    """Per source index of the snapshot, every target index its documents go to (the snapshot's mappings are read
    only when types are split)."""
    out: dict[str, list[str]] = {}
    for index in indices:
        types = repo.index_metadata(snapshot, index).mappings if type_mode == "index-per-type" else ()
        out[index] = TargetNames.of_index(rename, type_mode, types).every(index)
    return out

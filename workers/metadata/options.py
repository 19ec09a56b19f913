"""What the user chose: allow lists, rename rules, replica override, multi-type handling, overwrite policy."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal

from workers.common.errors import ConfigurationError
from workers.metadata.allowlist import AllowLists
from workers.metadata.rename import RenameRules

MultiType = Literal["union", "split"]


@dataclass(frozen=True)
class MigrationOptions:
    """Options of evaluate and migrate."""

    allow: AllowLists = field(default_factory=AllowLists)
    rename: RenameRules = field(default_factory=RenameRules)
    replicas: int | None = None
    multi_type: MultiType = "union"
    allow_existing: bool = False

    @classmethod
    def build(cls, *, index_allowlist: Iterable[str] = (), index_template_allowlist: Iterable[str] = (),
              component_template_allowlist: Iterable[str] = (), rename: Iterable[str] = (),
              replicas: int | None = None, multi_type: str = "union", allow_existing: bool = False,
              ) -> MigrationOptions:
        """Parse and check every option; errors name the option."""
        if replicas is not None and replicas < 0:
            raise ConfigurationError(f"replicas must be 0 or more, not {replicas}")
        if multi_type not in ("union", "split"):
            raise ConfigurationError(f"multi-type handling must be 'union' or 'split', not {multi_type!r}")
        return cls(
            AllowLists.parse(index_allowlist, index_template_allowlist, component_template_allowlist),
            RenameRules.parse(rename), replicas, "split" if multi_type == "split" else "union", allow_existing,
        )

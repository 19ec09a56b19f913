"""Target index names that the metadata migration and the backfill must agree on.

The metadata migration creates the indices; the backfill writes documents into them. Both name a split
multi-type index's parts here, and both apply the same rename rules (``workers.metadata.rename``), so that no
document is sent to an index the metadata step did not create.
"""

from __future__ import annotations

from collections.abc import Iterable

# Elasticsearch <= 6 keeps this pseudo-type for defaults: it holds no documents and never becomes an index.
DEFAULT_TYPE = "_default_"


def split_types(type_names: Iterable[str]) -> frozenset[str]:
    """The mapping types that become indices of their own when multi-type indices are split: every type but
    ``_default_``, when there are two or more (a single-type index keeps its name)."""
    types = frozenset(t for t in type_names if t != DEFAULT_TYPE)
    return types if len(types) >= 2 else frozenset()


def split_index_name(index: str, type_name: str) -> str:
    """The index that type ``type_name`` of ``index`` becomes when split (index names are lower case)."""
    return f"{index}_{type_name}".lower()

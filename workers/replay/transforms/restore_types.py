"""Elasticsearch <= 6 mapping types put back into typeless requests: the reverse replayer's type step.

After a cutover, clients write to the target (typeless); the reverse replayer applies those writes to the source,
which, on Elasticsearch 5/6, needs each document's mapping type. ``restore_types`` says it per (source) index: the
one mapping type the index has (a multi-type index cannot be restored: which type a typeless write meant is lost).

Paths: ``/{i}/_doc/{id}`` becomes ``/{i}/{t}/{id}``; a POST to ``/{i}/_doc`` (an automatic id) becomes a POST to
``/{i}/{t}``; ``/{i}/_create/{id}`` and ``/{i}/_update/{id}`` (also ``_source``, ``_explain``, ``_termvectors``)
become ``/{i}/{t}/{id}/_create`` ... Bodies: ``_bulk`` action lines of a listed index without ``_type`` gain it
(the index from ``_index``, else from a ``/{i}/_bulk`` path). Indices not listed, and everything else (searches,
``_bulk`` document lines), are left as they are. This step runs after the (inverse) renames, so it sees the
source's index names, which are what ``restore_types`` is keyed by.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from workers.replay.messages import HttpRequest
from workers.replay.transforms.base import api_of, is_index, with_segments
from workers.replay.transforms.bodies import Edit, rewrite_bulk
from workers.replay.transforms.types import ID_APIS


class RestoreTypeTransform:
    """Typeless document paths and ``_bulk`` actions given the mapping type of their (source) index."""

    name = "restore-types"

    def __init__(self, restore_types: Mapping[str, str]) -> None:
        self.types = dict(restore_types)

    def apply(self, req: HttpRequest) -> list[HttpRequest]:
        """``req`` with the types of listed indices put back."""
        if not self.types:
            return [req]
        segments = req.segments
        index = segments[0] if segments and is_index(segments[0]) else None
        type_name = self.types.get(index) if index is not None else None
        if index is not None and type_name is not None:
            typed = _typed_path(req.method, index, type_name, segments[1:])
            if typed is not None:
                return [with_segments(req, typed)]
        if api_of(segments) == "_bulk" and req.body:
            body = rewrite_bulk(req.body, self._bulk_edit(index))
            if body is not req.body:
                req = replace(req, body=body)
        return [req]

    def _bulk_edit(self, path_index: str | None) -> Edit:
        def edit(meta: dict[str, Any]) -> bool:
            if "_type" in meta:
                return False
            index = meta.get("_index", path_index)
            type_name = self.types.get(index) if isinstance(index, str) else None
            if type_name is None:
                return False
            meta["_type"] = type_name
            return True

        return edit


def _typed_path(method: str, index: str, type_name: str, rest: list[str]) -> list[str] | None:
    """The typed form of a typeless document path (``rest``: the segments after the index), or None when ``rest``
    is not one (searches and other ``_`` endpoints work typeless on Elasticsearch 5/6 as they are)."""
    if not rest:
        return None
    api = rest[0]
    if api == "_doc":
        if len(rest) == 2:
            return [index, type_name, rest[1]]
        if len(rest) == 1 and method == "POST":
            return [index, type_name]
        return None
    if api in ID_APIS and len(rest) == 2:
        return [index, type_name, rest[1], api]
    return None

"""Elasticsearch <= 6 mapping types out of replayed requests, by the backfill's rule (``workers.rfs.naming``).

Type mode ``drop`` removes the type; ``index-per-type`` also sends type T of a multi-type index I to the index the
metadata migration split it into (``split_index_name``: ``i_t``); a type of an index not known to be split is just
dropped. Renames are not applied here: the renames step runs after this one, so a split name is renamed exactly as
``TargetNames.name`` renames it.

Paths (a comma list of types routes to each split index): ``/{i}/{t}/{id}`` becomes ``/{i}/_doc/{id}``,
``/{i}/{t}/{id}/_update`` (also ``_create``, ``_source``, ``_explain``, ``_termvectors``) becomes ``/{i}/_update/{id}``,
``/{i}/{t}/_search`` (any ``_`` endpoint: ``_bulk``, ``_count``, ``_mget`` ...) becomes ``/{i}/_search``, and a POST
to ``/{i}/{t}`` (an automatic id) becomes a POST to ``/{i}/_doc``. ``_doc`` in the type's place is already typeless.
Bodies: ``_type`` leaves ``_bulk`` actions and ``_mget`` docs, ``type``/``types`` leave ``_msearch`` headers, and
with index-per-type their index is routed (a typed path's type applies to entries that name none).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from typing import Any

from workers.metadata.rename import RenameRules
from workers.replay.messages import HttpRequest
from workers.replay.transforms.base import api_of, is_index, with_segments
from workers.replay.transforms.bodies import Edit, rewrite_body
from workers.rfs.naming import TargetNames

# Document endpoints that take the id before them in a typed path and after them in a typeless one.
ID_APIS = frozenset({"_update", "_create", "_source", "_explain", "_termvectors"})
# Bytes a body must contain for a type to be in it: without them (and without a typed path) it is not parsed.
_TYPE_MARKERS = {"_bulk": b'"_type"', "_mget": b'"_type"', "_msearch": b'"type'}


def _as_list(value: Any) -> list[str]:
    if isinstance(value, str):
        return [t for t in value.split(",") if t]
    if isinstance(value, list):
        return [t for t in value if isinstance(t, str)]
    return []


def _drop_type(meta: dict[str, Any]) -> bool:
    """Type mode drop: ``_type`` removed."""
    if "_type" in meta:
        del meta["_type"]
        return True
    return False


class TypeTransform:
    """Typed paths and bodies made typeless, types routed to split indices in index-per-type mode."""

    name = "types"

    def __init__(self, type_mode: str, index_types: Mapping[str, Iterable[str]]) -> None:
        # The split of each index, as the backfill computes it from the index's types (none: not split).
        names = {index: TargetNames.of_index(RenameRules(), type_mode, types) for index, types in index_types.items()}
        self._names = {index: n for index, n in names.items() if n.split}

    def route(self, index: str, type_name: str | None) -> str:
        """The (not yet renamed) index documents of ``type_name`` in ``index`` go to."""
        names = self._names.get(index)
        return names.name(index, type_name) if names is not None and type_name else index

    def route_list(self, indices: str, types: Sequence[str]) -> str:
        """An index expression (comma list) for these types: each index once per distinct target."""
        if not self._names or not types:
            return indices
        out: list[str] = []
        for index in indices.split(","):
            for type_name in types:
                routed = self.route(index, type_name)
                if routed not in out:
                    out.append(routed)
        return ",".join(out)

    def apply(self, req: HttpRequest) -> list[HttpRequest]:
        """``req`` without types."""
        segments = req.segments
        path_index = segments[0] if segments and is_index(segments[0]) else None
        path_types: list[str] = []
        if path_index is not None and len(segments) >= 2 and not segments[1].startswith("_"):
            typeless = self._typeless_path(req.method, segments)
            if typeless is not None:
                path_types = _as_list(segments[1])
                req = with_segments(req, typeless)
        api = api_of(req.segments)
        marker = _TYPE_MARKERS.get(api or "")
        if req.body and marker is not None and ((path_types and self._names) or marker in req.body):
            edit = self._header_edit(path_index, path_types) if api == "_msearch" else \
                self._action_edit(path_index, path_types[0] if len(path_types) == 1 else None)
            body = rewrite_body(api, req.body, edit)
            if body is not req.body:
                req = replace(req, body=body)
        return [req]

    def _typeless_path(self, method: str, segments: list[str]) -> list[str] | None:
        """The typeless form of a typed path ``/{index}/{type}/...``, or None when it is no typed API."""
        index, types, rest = segments[0], _as_list(segments[1]), segments[2:]
        if not rest:
            if method != "POST":
                return None
            rest = ["_doc"]
        elif rest[0].startswith("_"):
            pass  # /{i}/{t}/_search ...: the endpoint follows the index directly
        elif len(rest) == 1:
            rest = ["_doc", rest[0]]
        elif len(rest) == 2 and rest[1] in ID_APIS:
            rest = [rest[1], rest[0]]
        else:
            return None
        return [self.route_list(index, types), *rest]

    def _action_edit(self, path_index: str | None, path_type: str | None) -> Edit:
        """For ``_bulk`` action metadata and ``_mget`` docs: ``_type`` removed, ``_index`` routed."""
        if not self._names:
            return _drop_type
        path_target = self.route(path_index, path_type) if path_index is not None else None

        def edit(meta: dict[str, Any]) -> bool:
            had_type = "_type" in meta
            type_name = meta.pop("_type", None)
            if not isinstance(type_name, str):
                type_name = path_type
            index = meta.get("_index", path_index)
            if not isinstance(index, str) or type_name is None:
                return had_type
            target = self.route(index, type_name)
            # An entry naming no index goes to the path's: name the routed one only when it differs from that.
            if target != (index if "_index" in meta else path_target):
                meta["_index"] = target
                return True
            return had_type

        return edit

    def _header_edit(self, path_index: str | None, path_types: list[str]) -> Edit:
        """For ``_msearch`` headers: ``type``/``types`` removed, ``index`` routed."""
        path_target = self.route_list(path_index, path_types) if path_index is not None else None

        def edit(header: dict[str, Any]) -> bool:
            had_type = "type" in header or "types" in header
            types = _as_list(header.pop("type", None)) + _as_list(header.pop("types", None)) or path_types
            if not self._names or not types:
                return had_type
            index = header.get("index")
            new: Any
            if isinstance(index, str):
                new = self.route_list(index, types)
            elif isinstance(index, list):
                new = [self.route_list(i, types) if isinstance(i, str) else i for i in index]
            elif index is None and path_index is not None:
                new = self.route_list(path_index, types)
                if new == path_target:
                    return had_type
            else:
                return had_type
            if new == index:
                return had_type
            header["index"] = new
            return True

        return edit

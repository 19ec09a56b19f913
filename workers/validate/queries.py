"""Query comparison: the same searches on the source and the target, compared on hit totals, top ids and
aggregation buckets, one row each.

The default searches are chosen from the target index's mapping: a match_all count; a terms aggregation on the first
keyword field; a daily date histogram on the first date field; the top ten by the first date or numeric field. A
person adds their own in the workflow file (``validation.queries``). The source may have changed since its snapshot
(live traffic before replay catches up), so a difference here is a warning, not an error.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson
from opensearchpy import OpenSearch
from opensearchpy.exceptions import TransportError

from workers.common.cluster_info import ServerVersion


@dataclass(frozen=True)
class QueryRow:
    """One search compared."""

    index: str  # the source index
    target: str  # the target index (or indices)
    query: str
    source: str
    target_result: str
    match: bool
    note: str = ""

    def to_dict(self) -> dict[str, Any]:
        """Plain values."""
        return {"index": self.index, "target": self.target, "query": self.query, "source": self.source,
                "target_result": self.target_result, "match": self.match, "note": self.note}


def _fields(properties: dict[str, Any], prefix: str = "") -> list[tuple[str, str]]:
    """(path, type) of every field (sub-fields included), nested objects left out (their documents are separate)."""
    out: list[tuple[str, str]] = []
    for name, spec in properties.items():
        path = f"{prefix}{name}"
        kind = spec.get("type", "object")
        if kind == "nested":
            continue
        if "properties" in spec:
            out += _fields(spec["properties"], f"{path}.")
        else:
            out.append((path, kind))
        for sub, sub_spec in (spec.get("fields") or {}).items():
            out.append((f"{path}.{sub}", sub_spec.get("type", "")))
    return out


def mapped_fields(client: OpenSearch, index: str) -> list[tuple[str, str]]:
    """The target index's fields and types."""
    found = client.indices.get_mapping(index=index)
    mappings = next(iter(found.values()))["mappings"]
    return _fields(mappings.get("properties") or {})


_NUMERIC = {"long", "integer", "short", "byte", "double", "float", "half_float", "scaled_float", "unsigned_long"}


def default_queries(fields: list[tuple[str, str]], source: ServerVersion) -> list[tuple[str, dict[str, Any]]]:
    """(name, body) of the default searches for an index with these fields."""
    queries: list[tuple[str, dict[str, Any]]] = [("match_all count", {"size": 0, "query": {"match_all": {}}})]
    keyword = next((f for f, t in fields if t == "keyword"), None)
    date = next((f for f, t in fields if t == "date"), None)
    sortable = date or next((f for f, t in fields if t in _NUMERIC), None)
    if keyword:
        queries.append((f"terms {keyword}", {"size": 0, "aggs": {"a": {"terms": {
            "field": keyword, "size": 10, "shard_size": 1000, "order": [{"_count": "desc"}, {"_key": "asc"}]}}}}))
    if date:
        # `fixed_interval` arrived in Elasticsearch 7.2; older sources take `interval`.
        legacy = source.engine == "elasticsearch" and (source.major, int(source.number.split(".")[1])) < (7, 2)
        interval = "interval" if legacy else "fixed_interval"
        queries.append((f"date histogram {date}", {"size": 0, "aggs": {"a": {"date_histogram": {
            "field": date, interval: "1d", "min_doc_count": 1}}}}))
    if sortable:
        queries.append((f"top 10 by {sortable}", {"size": 10, "_source": False, "sort": [{sortable: "desc"}]}))
    return queries


def _total(resp: dict[str, Any]) -> int:
    total = resp["hits"]["total"]
    return int(total["value"] if isinstance(total, dict) else total)  # Elasticsearch 6 gives a number


def _buckets(aggs: dict[str, Any]) -> Any:
    """Aggregations without the fields that depend on shard layout (error bounds)."""
    if isinstance(aggs, dict):
        return {k: _buckets(v) for k, v in aggs.items() if k not in ("doc_count_error_upper_bound", "key_as_string")}
    if isinstance(aggs, list):
        return [_buckets(v) for v in aggs]
    return aggs


def _top(resp: dict[str, Any]) -> tuple[list[Any], list[str]]:
    """The hits' sort values, and the ids of hits whose sort value is unique among them (ties may order either
    way on two clusters)."""
    hits = resp["hits"]["hits"]
    values = [h.get("sort") for h in hits]
    unique = [h["_id"] for h in hits if values.count(h.get("sort")) == 1]
    return values, sorted(unique)


def _summary(resp: dict[str, Any], body: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"total": _total(resp)}
    if body.get("aggs") or body.get("aggregations"):
        out["aggregations"] = _buckets(resp.get("aggregations") or {})
    if body.get("size", 10):
        values, ids = _top(resp)
        out["top"] = values if body.get("sort") else None
        out["ids"] = ids if body.get("sort") else sorted(h["_id"] for h in resp["hits"]["hits"])
    return out


def _short(value: dict[str, Any]) -> str:
    text = orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()
    return text if len(text) <= 300 else text[:297] + "..."


def _search(client: OpenSearch, index: str, body: dict[str, Any], version: ServerVersion | None) -> dict[str, Any]:
    # Exact totals: Elasticsearch 7+ and OpenSearch stop counting at 10,000 unless asked; 6.x has no such option.
    if not (version and version.engine == "elasticsearch" and version.major < 7):
        body = {"track_total_hits": True, **body}
    return client.search(index=index, body=body)


def compare(source: OpenSearch, target: OpenSearch, source_version: ServerVersion, index: str,
            targets: list[str], custom: tuple[dict[str, Any], ...] = (), *, settle_s: float = 0.0,
            rechecks: int = 0, sleep: Callable[[float], None] = time.sleep) -> list[QueryRow]:
    """Every default and matching custom search of ``index`` on both clusters. With ``rechecks`` (a live source),
    the searches that differ are run again on both after ``settle_s``, up to ``rechecks`` times: writes still on
    their way to the target change a total or a bucket for a moment; a search that agrees at a recheck is a match
    (noted), only one that differs every time is reported."""
    name = ",".join(targets)
    if len(targets) > 1:
        # Documents split by type over several target indices: only their total can be compared.
        queries = [("match_all count", {"size": 0, "query": {"match_all": {}}})]
    else:
        queries = default_queries(mapped_fields(target, targets[0]), source_version)
    for query in custom:
        pattern = str(query.get("index") or "*")
        if fnmatch.fnmatch(index, pattern) or any(fnmatch.fnmatch(t, pattern) for t in targets):
            queries.append((str(query["name"]), dict(query["body"])))
    bodies = [body for _, body in queries]
    rows = [_run(source, target, source_version, index, name, label, body) for label, body in queries]
    for attempt in range(1, rechecks + 1):
        differing = [k for k, row in enumerate(rows) if not row.match and not row.note.startswith("failed")]
        if not differing:
            break
        sleep(settle_s)
        for k in differing:
            again = _run(source, target, source_version, index, name, rows[k].query, bodies[k])
            rows[k] = dataclasses.replace(again, note=f"converged at recheck {attempt} (writes in flight)") \
                if again.match else again
    return rows


def _run(source: OpenSearch, target: OpenSearch, source_version: ServerVersion, index: str, name: str, label: str,
         body: dict[str, Any]) -> QueryRow:
    # The source first: the target lags, so a write between the two reads shows as in flight, never as ahead.
    try:
        on_source = _summary(_search(source, index, body, source_version), body)
        on_target = _summary(_search(target, name, body, None), body)
    except TransportError as exc:
        return QueryRow(index, name, label, "", "", False, f"failed: {getattr(exc, 'error', exc)}")
    return QueryRow(index, name, label, _short(on_source), _short(on_target), on_source == on_target)

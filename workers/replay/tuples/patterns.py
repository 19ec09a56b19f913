"""Path patterns: a request path with its index names, ids and other object names replaced by placeholders, so
that requests to the same endpoint are counted together (``/logs-2024/_doc/1`` is ``/{index}/_doc/{id}``)."""

from __future__ import annotations

# After one of these segments (an API's or a placeholder), the next segment names an object of this kind.
_NAMED = {
    "_doc": "{id}", "_create": "{id}", "_update": "{id}", "_source": "{id}", "_explain": "{id}",
    "_termvectors": "{id}", "_alias": "{alias}", "_aliases": "{alias}", "_template": "{template}",
    "_index_template": "{template}", "_component_template": "{template}", "pipeline": "{pipeline}",
    "_snapshot": "{repository}", "{repository}": "{snapshot}", "_scripts": "{script}", "_tasks": "{task}",
    "scroll": "{scroll_id}", "_data_stream": "{data_stream}", "_rollover": "{index}", "_nodes": "{node}",
    # Elasticsearch 6 and earlier: /index/type/id.
    "{index}": "{type}", "{type}": "{id}",
}
# These API segments are followed by a sub-API word, kept as is: ``/_cat/indices``, ``/_cluster/health``,
# ``/_search/scroll``, ``/_ingest/pipeline``.
_SUB_API = frozenset({"_cat", "_cluster", "_ingest", "_search", "_msearch", "_security", "_plugins", "_opendistro",
                      "_ilm", "_ism", "_ml", "_license", "_xpack"})
# Below ``_cat`` and ``_cluster``, the segment after these words is an index expression.
_INDEX_AFTER = frozenset({"indices", "shards", "count", "health", "recovery", "segments", "allocation", "state"})
# Words after ``/_nodes`` (or a node) that are APIs, not node names.
_NODE_WORDS = frozenset({"stats", "info", "hot_threads", "usage", "reload_secure_settings"})


def path_pattern(path: str) -> str:
    """``path`` (without its query) with object names replaced: ``/{index}/_search``, ``/{index}/_doc/{id}``,
    ``/_bulk``, ``/{index}/{type}/{id}`` (Elasticsearch 6), ``/_cat/indices/{index}``..."""
    segments = [s for s in path.split("?", 1)[0].split("/") if s]
    out: list[str] = []
    for i, segment in enumerate(segments):
        prev = out[-1] if out else ""
        if segment.startswith("_"):
            out.append(segment)
        elif i == 0:
            out.append("{index}")
        elif (prev in _SUB_API and segment.isidentifier()) or (prev in ("_nodes", "{node}")
                                                               and segment in _NODE_WORDS):
            out.append(segment)
        elif prev in _INDEX_AFTER and out[0] in ("_cat", "_cluster"):
            out.append("{index}")
        else:
            out.append(_NAMED.get(prev, "{name}"))
    return "/" + "/".join(out)

"""Which requests change data: those a client is answered for only after their capture is acknowledged.

By method, POST, PUT, DELETE and PATCH change data. But clients send most searches as POST with a body
(opensearch-py and the Elasticsearch clients do), and a search changes nothing: holding it for Kafka would cost
every search a round trip to the brokers for no durability gain. A POST to one of the read APIs below is
therefore captured like a GET, asynchronously; ``--durable-read-posts`` holds it like a write again.
"""

from __future__ import annotations

from workers.capture.options import MUTATING_METHODS

# The first path segment that starts with "_" names the API (index names cannot start with "_"). POST to these
# reads: searches, counts, multi-gets and the like. Everything else sent as POST is treated as a write.
READ_APIS = frozenset({
    "_search", "_msearch", "_count", "_mget", "_field_caps", "_explain", "_validate", "_termvectors",
    "_mtermvectors", "_analyze", "_rank_eval", "_search_shards", "_render",
})


def api_of(path: str) -> str:
    """The API a request path calls: its first segment starting with "_" ("" for document-less index paths)."""
    for segment in path.split("/"):
        if segment.startswith("_"):
            return segment
    return ""


def changes_data(method: str, path: str, durable_read_posts: bool = False) -> bool:
    """True when the request may change data on the source, so that its capture must be acknowledged first."""
    if method not in MUTATING_METHODS:
        return False
    if method != "POST" or durable_read_posts:
        return True
    return api_of(path) not in READ_APIS

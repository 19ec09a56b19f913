"""The target side: every document of a target index read once, in slices, and fingerprinted like the snapshot side.

A point in time (OpenSearch 2.4+) keeps the view fixed while ``search_after`` pages through it sorted by ``_doc``;
targets without one use a scroll. Either is sliced: with at least as many slices as the index has primary shards
each slice reads one shard only, where ``_doc`` is a unique sort key (a slice over several shards could skip or
repeat documents that share a ``_doc``). The slices run on ``connections`` threads: parsing and hashing hold the
interpreter lock, but the target's fetches overlap.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import time
import zlib
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import orjson
from opensearchpy import JSONSerializer, OpenSearch
from opensearchpy.exceptions import NotFoundError, RequestError, TransportError

from workers.common.clusters import ClusterConnection, build_client
from workers.common.fingerprint import BUCKETS, NO_ROUTING, Fingerprint, canonical_value, document_hash, id_hash

Hits = list[dict[str, Any]]
Docs = dict[str, tuple[str | None, bytes]]  # id -> (routing, canonical source), as ``narrow.Docs``
Consumer = Callable[[Hits], None]
KEEP_ALIVE = "5m"


class ScanSerializer(JSONSerializer):
    """Responses parsed with orjson (several times faster than ``json`` on pages of documents), as the snapshot side
    parses each source (``canonical_source``); a page orjson refuses is parsed by ``json``."""

    def loads(self, s: str) -> Any:
        try:
            return orjson.loads(s)
        except orjson.JSONDecodeError:
            return json.loads(s)


def scan_client(conn: ClusterConnection, connections: int) -> OpenSearch:
    """A client for scanning: a connection per slice thread, responses parsed with orjson."""
    return build_client(conn, pool_maxsize=connections + 2, serializer=ScanSerializer())


@dataclass
class ScanStats:
    """How one scan went."""

    documents: int = 0
    seconds: float = 0.0
    method: str = ""  # "pit" or "scroll"
    slices: int = 0


def primary_shards(client: OpenSearch, index: str) -> int:
    """The index's number of primary shards."""
    found = client.indices.get_settings(index=index, name="index.number_of_shards")
    return int(next(iter(found.values()))["settings"]["index"]["number_of_shards"])


def _open_pit(client: OpenSearch, index: str) -> str | None:
    try:
        resp = client.transport.perform_request("POST", f"/{index}/_search/point_in_time",
                                                params={"keep_alive": KEEP_ALIVE})
    except (NotFoundError, RequestError):
        return None  # no point-in-time API: a scroll instead
    return str(resp["pit_id"])


def _close_pit(client: OpenSearch, pit: str) -> None:
    with contextlib.suppress(TransportError):  # it expires on its own
        client.transport.perform_request("DELETE", "/_search/point_in_time", body={"pit_id": [pit]})


def _pit_slice(client: OpenSearch, pit: str, slice_id: int, slices: int, body: dict[str, Any], page: int,
               consume: Consumer) -> int:
    after: list[Any] | None = None
    seen = 0
    while True:
        request: dict[str, Any] = {**body, "size": page, "pit": {"id": pit, "keep_alive": KEEP_ALIVE},
                                   "sort": ["_doc"], "track_total_hits": False}
        if slices > 1:
            request["slice"] = {"id": slice_id, "max": slices}
        if after is not None:
            request["search_after"] = after
        hits = client.transport.perform_request("POST", "/_search", body=request)["hits"]["hits"]
        if not hits:
            return seen
        consume(hits)
        seen += len(hits)
        after = hits[-1]["sort"]


def _scroll_slice(client: OpenSearch, index: str, slice_id: int, slices: int, body: dict[str, Any], page: int,
                  consume: Consumer) -> int:
    request: dict[str, Any] = {**body, "size": page, "sort": ["_doc"]}
    if slices > 1:
        request["slice"] = {"id": slice_id, "max": slices}
    resp = client.transport.perform_request("POST", f"/{index}/_search", params={"scroll": KEEP_ALIVE}, body=request)
    seen = 0
    try:
        while resp["hits"]["hits"]:
            consume(resp["hits"]["hits"])
            seen += len(resp["hits"]["hits"])
            resp = client.transport.perform_request("POST", "/_search/scroll",
                                                    body={"scroll": KEEP_ALIVE, "scroll_id": resp["_scroll_id"]})
    finally:
        with contextlib.suppress(TransportError):
            client.transport.perform_request("DELETE", "/_search/scroll", body={"scroll_id": [resp["_scroll_id"]]})
    return seen


def scan(client: OpenSearch, index: str, consumers: Callable[[], Consumer], *, connections: int = 4,
         page_size: int = 1000, body: dict[str, Any] | None = None) -> ScanStats:
    """Hand every document of ``index`` (a page at a time) to a consumer; one consumer per slice, from
    ``consumers()``, called from that slice's thread only."""
    began = time.monotonic()
    shards = primary_shards(client, index)
    slices = shards * math.ceil(max(1, connections) / shards)
    body = body or {}
    pit = _open_pit(client, index)
    stats = ScanStats(method="pit" if pit else "scroll", slices=slices)
    try:
        with ThreadPoolExecutor(max_workers=min(connections, slices), thread_name_prefix="scan") as pool:
            if pit:
                futures = [pool.submit(_pit_slice, client, pit, i, slices, body, page_size, consumers())
                           for i in range(slices)]
            else:
                futures = [pool.submit(_scroll_slice, client, index, i, slices, body, page_size, consumers())
                           for i in range(slices)]
            stats.documents = sum(f.result() for f in futures)
    finally:
        if pit:
            _close_pit(client, pit)
    stats.seconds = time.monotonic() - began
    return stats


def _hasher(fp: Fingerprint, hashed: frozenset[int] | None) -> Consumer:
    """Count and hash each hit, as ``Fingerprint.add(id, routing, canonical_value(source))`` written out: this runs
    once per document of the target and its calls were a good part of the scan's own CPU."""
    counts, sums = fp.counts, fp.sums
    dumps, sort_keys, sha256, crc32 = orjson.dumps, orjson.OPT_SORT_KEYS, hashlib.sha256, zlib.crc32

    def consume(hits: Hits) -> None:
        for hit in hits:
            raw_id = hit["_id"].encode()
            bucket = crc32(raw_id) % BUCKETS
            counts[bucket] += 1
            if hashed is not None and bucket not in hashed:
                continue
            source = hit.get("_source")
            try:
                canonical = dumps(source, option=sort_keys)
            except TypeError:
                canonical = canonical_value(source)
            routing = hit.get("_routing")
            sums[bucket] += int.from_bytes(sha256(
                raw_id + b"\x00" + (routing.encode() if routing is not None else NO_ROUTING) + b"\x00"
                + canonical).digest()[:16], "little")

    return consume


def fingerprint_index(client: OpenSearch, index: str, *, hashed: frozenset[int] | None = None,
                      connections: int = 4, page_size: int = 1000, ids: bool = False) -> tuple[Fingerprint, ScanStats]:
    """The target index's fingerprint: every document counted per bucket; hashed in every bucket, or in ``hashed``
    only (a sample). A sample reads ids only and fetches the sampled documents' sources with ``_mget``; with ``ids``
    it also sums every document's id per bucket (``Fingerprint.ids``: the live side has them to compare)."""
    parts: list[Fingerprint] = []

    def consumers() -> Consumer:
        fp = Fingerprint(ids=[0] * BUCKETS if ids and hashed is not None else None)
        parts.append(fp)
        if hashed is None:
            return _hasher(fp, None)
        return _sampler(client, index, fp, hashed)

    stats = scan(client, index, consumers, connections=connections, page_size=page_size,
                 body={"_source": False} if hashed is not None else None)
    total = Fingerprint()
    for fp in parts:
        total.merge(fp)
    return total, stats


def _sampler(client: OpenSearch, index: str, fp: Fingerprint, hashed: frozenset[int]) -> Consumer:
    def consume(hits: Hits) -> None:
        wanted = []
        for hit in hits:
            bucket = zlib.crc32(hit["_id"].encode()) % BUCKETS
            fp.counts[bucket] += 1
            if fp.ids is not None:
                fp.ids[bucket] += id_hash(hit["_id"], hit.get("_routing"))
            if bucket in hashed:
                ref = {"_id": hit["_id"]}
                if hit.get("_routing") is not None:
                    ref["routing"] = hit["_routing"]
                wanted.append(ref)
        if wanted:
            docs = client.transport.perform_request("POST", f"/{index}/_mget", body={"docs": wanted})["docs"]
            for doc in docs:
                if doc.get("found"):
                    bucket = zlib.crc32(doc["_id"].encode()) % BUCKETS
                    fp.sums[bucket] += document_hash(doc["_id"], doc.get("_routing"), canonical_value(doc["_source"]))

    return consume


def documents_in_buckets(client: OpenSearch, index: str, buckets: set[int], *, connections: int = 4,
                         page_size: int = 1000) -> dict[str, tuple[str | None, bytes]]:
    """id -> (routing, canonical source) of the target index's documents in ``buckets`` (a scan, re-hashing ids)."""
    found: dict[str, tuple[str | None, bytes]] = {}

    def consumers() -> Consumer:
        def consume(hits: Hits) -> None:
            for hit in hits:
                if zlib.crc32(hit["_id"].encode()) % BUCKETS in buckets:
                    found[hit["_id"]] = (hit.get("_routing"), canonical_value(hit.get("_source")))
        return consume

    scan(client, index, consumers, connections=connections, page_size=page_size)
    return found


def plain_scan(client: OpenSearch, index: str, *, connections: int = 4, page_size: int = 1000) -> ScanStats:
    """The same scan with nothing done to the documents: the benchmark's baseline."""
    return scan(client, index, lambda: (lambda hits: None), connections=connections, page_size=page_size)


def fetch_documents(client: OpenSearch, index: str, wanted: list[tuple[str, str | None]]) -> Docs:
    """id -> (routing, canonical source) of the (id, routing) pairs found in ``index`` now (a real-time ``_mget``,
    in chunks); an absent one is left out."""
    found: Docs = {}
    for start in range(0, len(wanted), 500):
        refs = [{"_id": i} | ({"routing": r} if r is not None else {}) for i, r in wanted[start:start + 500]]
        for doc in client.transport.perform_request("POST", f"/{index}/_mget", body={"docs": refs})["docs"]:
            if doc.get("found") and doc.get("_source") is not None:
                found[doc["_id"]] = (doc.get("_routing"), canonical_value(doc["_source"]))
    return found

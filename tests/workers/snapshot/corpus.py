"""A realistic snapshot corpus built on a real cluster, and the documents the cluster itself says are live.

``build_corpus`` creates indices that exercise what a snapshot reader must get right (how Elasticsearch stores
a document in Lucene): custom routing, every ``_id`` encoding (Elasticsearch's ``Uid.encodeId``: numeric, base64, UTF-8,
512 bytes), sources sent as JSON with surrounding whitespace, SMILE and YAML, updates and deletes spread
over several segments (hard deletes through ``.liv`` where soft deletes can be turned off, soft deletes and
tombstones elsewhere), nested documents, a multi-megabyte document, ``best_compression``, a force-merged
index, an index of many small segments and an empty index. It then takes a filesystem snapshot of exactly
those indices and reads every live document back from the cluster (scroll, shard by shard), so the
expectation is what the engine returns, not what was sent.
"""

from __future__ import annotations

import copy
import json
import random
import re
import time
import warnings
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import orjson
import yaml
from opensearchpy import OpenSearch
from opensearchpy.exceptions import OpenSearchWarning, TransportError

from migration_pipeline.sandbox.datagen import generate, profile
from workers.common.cluster_info import server_version
from workers.snapshot import smile
from workers.snapshot.create import create_snapshot, register_fs_repository

Row = tuple[str, str, str | None, str]
"""(index, id, routing or None, canonical JSON of the source)."""

REPOSITORY_PREFIX = "corpus"


class CorpusError(AssertionError):
    """The cluster did something the corpus builder did not expect."""


@dataclass(frozen=True)
class Corpus:
    """A finished snapshot and the live documents its indices held, as the cluster reported them."""

    repo_dir: str
    snapshot: str
    indices: list[str]
    expected: set[Row]
    # (index, shard) -> the rows of that shard, read with preference=_shards:N; their union is ``expected``.
    by_shard: dict[tuple[str, int], set[Row]] = field(default_factory=dict)
    shards: dict[str, int] = field(default_factory=dict)
    # index -> {"docs", "lucene_docs", "deleted", "segments"} summed over the shards, at snapshot time.
    stats: dict[str, dict[str, int]] = field(default_factory=dict)
    engine: str = ""
    version: str = ""
    repository: str = ""
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)

    def rows_of(self, index: str) -> set[Row]:
        """The expected rows of one index."""
        return {row for row in self.expected if row[0] == index}


def canonical(source: Any) -> str:
    """The canonical JSON text of a parsed source: sorted keys, no ASCII escaping."""
    return json.dumps(source, sort_keys=True, ensure_ascii=False)


def canonical_source(raw: bytes | memoryview) -> str:
    """Canonical JSON of ``_source`` bytes as stored: JSON (any whitespace), SMILE or YAML."""
    data = bytes(raw)
    if smile.is_smile(data):
        return canonical(smile.decode(data))
    stripped = data.lstrip()
    if stripped.startswith((b"{", b"[")):
        return canonical(json.loads(data))
    if stripped.startswith(b"---"):
        return canonical(yaml.safe_load(data))
    return canonical(json.loads(data))


def row_of(index: str, doc_id: str, routing: str | None, source: bytes | memoryview) -> Row:
    """The row a reader's document should produce."""
    return (index, doc_id, routing, canonical_source(source))


# --- a small SMILE encoder (no shared names or values), enough for the corpus's one SMILE document ---


def _smile_vint(value: int) -> bytes:
    # Big-endian 7-bit groups; the last byte has bit 7 set and carries 6 bits.
    last = 0x80 | (value & 0x3F)
    value >>= 6
    out = bytearray()
    while value:
        out.insert(0, value & 0x7F)
        value >>= 7
    return bytes(out) + bytes([last])


def _smile_value(out: bytearray, value: Any) -> None:
    if value is None:
        out.append(0x21)
    elif value is True:
        out.append(0x23)
    elif value is False:
        out.append(0x22)
    elif isinstance(value, int):
        zigzag = (value << 1) ^ (value >> 63)
        if -16 <= value <= 15:
            out.append(0xC0 + zigzag)
        elif -(2**31) <= value < 2**31:
            out.append(0x24)
            out += _smile_vint(zigzag)
        else:
            out.append(0x25)
            out += _smile_vint(zigzag)
    elif isinstance(value, str):
        data = value.encode()
        is_ascii = len(data) == len(value)
        if not data:
            out.append(0x20)
        elif is_ascii and len(data) <= 32:
            out.append(0x40 + len(data) - 1)
            out += data
        elif is_ascii and len(data) <= 64:
            out.append(0x60 + len(data) - 33)
            out += data
        elif not is_ascii and len(data) <= 33:
            out.append(0x80 + len(data) - 2)
            out += data
        elif not is_ascii and len(data) <= 65:
            out.append(0xA0 + len(data) - 34)
            out += data
        else:
            out.append(0xE0 if is_ascii else 0xE4)
            out += data
            out.append(0xFC)
    elif isinstance(value, list):
        out.append(0xF8)
        for item in value:
            _smile_value(out, item)
        out.append(0xF9)
    elif isinstance(value, dict):
        out.append(0xFA)
        for key, item in value.items():
            name = str(key).encode()
            if not name:
                out.append(0x20)
            elif len(name) == len(str(key)) and len(name) <= 64:
                out.append(0x80 + len(name) - 1)
                out += name
            elif len(name) != len(str(key)) and 2 <= len(name) <= 57:
                out.append(0xC0 + len(name) - 2)
                out += name
            else:
                out.append(0x34)
                out += name
                out.append(0xFC)
            _smile_value(out, item)
        out.append(0xFB)
    else:
        raise TypeError(f"cannot SMILE-encode {type(value).__name__}")


def smile_encode(value: Any) -> bytes:
    """SMILE bytes for ``value`` (dicts, lists, str, int, bool, None)."""
    out = bytearray(b":)\n\x00")
    _smile_value(out, value)
    return bytes(out)


# --- talking to the cluster ---


class _Cluster:
    """The client plus the version-dependent details of writing to it."""

    def __init__(self, url: str, engine: str, version: str) -> None:
        self.client = OpenSearch(hosts=[url], timeout=300, http_compress=False)
        actual = server_version(self.client)
        if (actual.engine, actual.number) != (engine, version):
            raise CorpusError(f"{url} runs {actual.engine} {actual.number}, not {engine} {version}")
        self.engine = engine
        self.version = version
        self.major = actual.major
        self.minor = int(version.split(".")[1])
        # Elasticsearch 6 needs a type in mappings, bulk actions and document URLs.
        self.typed = engine == "elasticsearch" and self.major < 7
        # OpenSearch 2.2+ can merge small segments at every flush (on by default from 3.0), which would
        # merge away the older copies the churn indices are made to keep.
        self.keep_segments: dict[str, Any] = (
            {"merge_on_flush.enabled": False} if engine == "opensearch" and (self.major, self.minor) >= (2, 2) else {}
        )

    def create(self, index: str, settings: dict[str, Any], mapping: dict[str, Any] | None = None) -> None:
        body: dict[str, Any] = {"settings": {"index": {"number_of_replicas": 0, "refresh_interval": "-1",
                                                       **settings}}}
        if mapping is not None:
            body["mappings"] = {"_doc": mapping} if self.typed else mapping
        self.client.indices.create(index=index, body=body)

    def bulk(self, index: str, ops: Iterable[tuple[str, str, str | None, Any]]) -> None:
        """Send (op, id, routing, body) tuples: op is index (body: dict or bytes), update (partial doc), delete."""
        lines: list[bytes] = []
        for op, doc_id, routing, body in ops:
            action: dict[str, Any] = {"_index": index, "_id": doc_id}
            if self.typed:
                action["_type"] = "_doc"
            if routing is not None:
                action["routing"] = routing
            lines.append(orjson.dumps({op: action}))
            if op == "index":
                lines.append(body if isinstance(body, bytes) else orjson.dumps(body))
            elif op == "update":
                lines.append(orjson.dumps({"doc": body}))
            if len(lines) >= 1000:
                self._send_bulk(lines)
                lines = []
        if lines:
            self._send_bulk(lines)

    def _send_bulk(self, lines: list[bytes]) -> None:
        resp = self.client.transport.perform_request(
            "POST", "/_bulk", body=b"\n".join(lines) + b"\n", headers={"content-type": "application/x-ndjson"}
        )
        if resp.get("errors"):
            bad = [item for item in resp["items"] if next(iter(item.values())).get("error")]
            if bad:
                first = orjson.dumps(bad[0]).decode()
                hint = ""
                if "primary_operation_bytes" in first:
                    hint = (" (indexing pressure: start the node with a higher indexing_pressure.memory.limit, "
                            "or build with a smaller big_doc_mb)")
                raise CorpusError(f"bulk rejected {len(bad)} operations; first: {first}{hint}")

    def put_raw(self, index: str, doc_id: str, body: bytes, content_type: str, routing: str | None = None) -> None:
        """Index one document from raw bytes in any XContent type (the engine keeps the bytes as sent)."""
        params = {"routing": routing} if routing is not None else {}
        self.client.transport.perform_request(
            "PUT", f"/{index}/_doc/{quote(doc_id, safe='')}", params=params, body=body,
            headers={"content-type": content_type, "accept": "application/json"},
        )

    def update_raw(self, index: str, doc_id: str, partial: bytes, content_type: str,
                   routing: str | None = None) -> None:
        """A partial update sent in ``content_type``; the engine rewrites the source in its original type."""
        params = {"routing": routing} if routing is not None else {}
        path = f"/{index}/_doc/{quote(doc_id, safe='')}/_update" if self.typed else \
            f"/{index}/_update/{quote(doc_id, safe='')}"
        self.client.transport.perform_request(
            "POST", path, params=params, body=partial,
            headers={"content-type": content_type, "accept": "application/json"},
        )

    def flush(self, index: str) -> None:
        self.client.indices.flush(index=index, params={"wait_if_ongoing": "true"})

    def shard_of_routing(self, index: str, routing: str) -> int:
        resp = self.client.transport.perform_request("GET", f"/{index}/_search_shards", params={"routing": routing})
        return int(resp["shards"][0][0]["shard"])

    def scroll_shard(self, index: str, shard: int) -> Iterator[dict[str, Any]]:
        resp = self.client.search(
            index=index,
            body={"query": {"match_all": {}}, "sort": ["_doc"], "size": 200, "_source": True},
            params={"scroll": "2m", "preference": f"_shards:{shard}"},
        )
        scroll_id = resp.get("_scroll_id")
        try:
            while resp["hits"]["hits"]:
                yield from resp["hits"]["hits"]
                resp = self.client.scroll(body={"scroll_id": scroll_id, "scroll": "2m"})
                scroll_id = resp.get("_scroll_id", scroll_id)
        finally:
            if scroll_id:
                self.client.clear_scroll(body={"scroll_id": [scroll_id]}, ignore=(404,))


# --- the indices ---

# ids chosen for their Uid encoding (format notes §D): numeric, URL-safe base64 (with and without the 0xFD
# escape), UTF-8 fallbacks, and the two 512-byte extremes.
SPECIAL_IDS: tuple[str, ...] = (
    "12345",            # numeric, odd length
    "007",              # numeric with leading zeros
    "0",
    "18446744073709551617",  # numeric beyond 64 bits
    "bwc_doc",          # base64-looking, length % 4 == 3
    "QUJDRA",           # base64 of "ABCD"
    "AAAA",
    "a-b_c",            # length % 4 == 1: UTF-8
    "ab",               # last character not canonical base64: UTF-8
    "_w",               # base64 whose first byte is 0xFF: 0xFD escape
    "_Q",               # first byte 0xFD: 0xFD escape
    "-A",               # first byte 0xF8: plain base64
    "éèñ-文字-🚀",       # UTF-8
    "with#hash",        # a '#' must not be read as a type#id separator
    "a/b c?d&e=f",      # characters URLs need escaped
    "x" * 512,          # 512 bytes, base64 alphabet
    "é" * 256,          # 512 bytes of UTF-8
    "Zm9vYmFyYmF6" + "0123456789" * 20,  # long base64
)
ROUTINGS: tuple[str, ...] = ("user123", "rôute-✓", "42", "tenant-a", "tenant-b")
# Indexed once and never updated: the engine stores these bytes exactly, whitespace included.
RAW_JSON_BODY = b'\n\n  {"kind": "raw", "text": "kept as sent", "n": 1}  \n\n'


def _special_source(i: int, doc_id: str, version: int) -> dict[str, Any]:
    return {
        "title": f"special document {i}",
        "original_id": doc_id,
        "version": version,
        "unicode": "Grüße, 世界! \u00e9\u0301 — 🚀🎉",
        "escapes": "quote \" backslash \\ tab \t newline \n control \u0001",
        "numbers": {"int": -(2**40) + i, "float": 1.5 + i, "small": 0.1, "big": 2**53 + 1},
        "flags": [True, False, None],
        "empty": {"list": [], "object": {}, "string": ""},
    }


def _product(i: int, seed: int, version: int) -> dict[str, Any]:
    doc: dict[str, Any] = orjson.loads(next(generate("products", 1, seed=seed, start=i)).source)
    doc["version"] = version
    return doc


def _fill_churn(cluster: _Cluster, index: str, notes: list[str]) -> None:
    """Special ids, routing, updates and deletes over three flushed segments plus an unflushed tail."""
    routing: dict[str, str | None] = {}

    def rt(doc_id: str) -> str | None:
        return routing[doc_id]

    # Segment 1: the special ids, 60 products, three raw-bodied documents, and one id under two routings.
    ops: list[tuple[str, str, str | None, Any]] = []
    for i, doc_id in enumerate(SPECIAL_IDS):
        routing[doc_id] = ROUTINGS[i % len(ROUTINGS)] if i % 2 == 0 else None
        ops.append(("index", doc_id, rt(doc_id), _special_source(i, doc_id, 1)))
    for i in range(60):
        doc_id = f"p-{i:04d}"
        routing[doc_id] = ROUTINGS[i % len(ROUTINGS)] if i % 3 == 0 else None
        ops.append(("index", doc_id, rt(doc_id), _product(i, 7, 1)))
    cluster.bulk(index, ops)
    # The same _id under two routings that land on different shards: two live documents.
    by_shard: dict[int, str] = {}
    for candidate in (f"r{n}" for n in range(50)):
        by_shard.setdefault(cluster.shard_of_routing(index, candidate), candidate)
        if len(by_shard) >= 2:
            break
    twins = sorted(by_shard.values())[:2]
    if len(twins) < 2:
        raise CorpusError(f"{index}: no two routings on different shards")
    cluster.bulk(index, [("index", "same-id", r, {"twin": r, "version": 1}) for r in twins])
    cluster.put_raw(index, "raw-json", RAW_JSON_BODY, "application/json")
    cluster.put_raw(index, "smile-doc", smile_encode(
        {"kind": "smile", "name": "binary JSON", "ünï": "çødé ✓", "count": 3, "big": 100000, "neg": -70000,
         "ok": True, "none": None, "tags": ["a", "b" * 40, "ü" * 20],
         "nested": {"deep": {"text": "x" * 100}}}), "application/smile", routing="tenant-a")
    routing["smile-doc"] = "tenant-a"
    cluster.put_raw(index, "yaml-doc", "---\nkind: \"yaml\"\ncount: 7\nwords:\n  - \"one\"\n  - \"twö\"\n"
                    "inner:\n  flag: true\n".encode(), "application/yaml")
    cluster.flush(index)

    # Segment 2: full and partial updates, deletes, new documents.
    ops = [("index", f"p-{i:04d}", rt(f"p-{i:04d}"), _product(i, 8, 2)) for i in range(10)]
    ops.append(("index", "12345", rt("12345"), _special_source(0, "12345", 2)))
    ops += [("update", f"p-{i:04d}", rt(f"p-{i:04d}"), {"price": 0.5 + i, "updated": True}) for i in range(10, 15)]
    ops += [("delete", f"p-{i:04d}", rt(f"p-{i:04d}"), None) for i in range(20, 30)]
    ops += [("delete", doc_id, rt(doc_id), None) for doc_id in ("007", "a-b_c", "_Q")]
    for i in range(60, 80):
        doc_id = f"p-{i:04d}"
        routing[doc_id] = ROUTINGS[i % len(ROUTINGS)] if i % 3 == 0 else None
        ops.append(("index", doc_id, rt(doc_id), _product(i, 7, 1)))
    cluster.bulk(index, ops)
    cluster.update_raw(index, "smile-doc", smile_encode({"doc": {"count": 4, "added": "after flush"}}),
                       "application/smile", routing=rt("smile-doc"))
    cluster.flush(index)

    # Segment 3: second updates of documents updated before, re-creation of deleted ids, one twin deleted.
    ops = [("index", f"p-{i:04d}", rt(f"p-{i:04d}"), _product(i, 9, 3)) for i in range(5)]
    ops += [("index", f"p-{i:04d}", rt(f"p-{i:04d}"), _product(i, 9, 2)) for i in range(60, 65)]
    ops += [("delete", f"p-{i:04d}", rt(f"p-{i:04d}"), None) for i in range(70, 75)]
    ops.append(("index", "p-0020", rt("p-0020"), {"recreated": True, "version": 3}))
    ops.append(("index", "007", rt("007"), {"recreated": True, "version": 3, "id": "007"}))
    ops.append(("delete", "same-id", twins[1], None))
    cluster.bulk(index, ops)
    cluster.flush(index)

    # Not flushed here: the snapshot's own flush commits it.
    ops = [("index", "p-0030", rt("p-0030"), _product(30, 10, 4)), ("delete", "p-0031", rt("p-0031"), None)]
    for i in range(80, 85):
        doc_id = f"p-{i:04d}"
        routing[doc_id] = None
        ops.append(("index", doc_id, None, _product(i, 7, 1)))
    cluster.bulk(index, ops)
    notes.append(f"{index}: twins of 'same-id' routed {twins[0]!r} (kept) and {twins[1]!r} (deleted)")


def _nested_mapping() -> dict[str, Any]:
    mapping = copy.deepcopy(profile("nested").mapping)
    mapping["properties"]["items"]["properties"]["options"] = {
        "type": "nested", "properties": {"name": {"type": "keyword"}, "value": {"type": "keyword"}}}
    return mapping


def _fill_nested(cluster: _Cluster, index: str) -> None:
    ops: list[tuple[str, str, str | None, Any]] = [
        ("index", d.id, d.routing, d.source) for d in generate("nested", 40, seed=11, routing=True)
    ]
    ops.append(("index", "order-empty-items", None, {"order_id": "E", "items": [], "status": "created"}))
    ops.append(("index", "order-no-items", None, {"order_id": "N", "status": "created"}))
    ops.append(("index", "order-two-levels", None, {
        "order_id": "T", "status": "paid",
        "items": [{"sku": f"SKU-{k}", "quantity": k + 1,
                   "options": [{"name": "color", "value": c} for c in ("red", "blue", "green")[: k + 1]]}
                  for k in range(3)]}))
    cluster.bulk(index, ops)
    cluster.flush(index)
    docs = {d.id: d for d in generate("nested", 40, seed=11, routing=True)}
    ids = sorted(docs)
    more: list[tuple[str, str, str | None, Any]] = [("delete", i, docs[i].routing, None) for i in ids[:5]]
    for doc_id in ids[5:10]:
        doc = orjson.loads(docs[doc_id].source)
        doc["items"] = doc["items"][:1] + [{"sku": "SKU-NEW", "quantity": 9, "unit_price": 1.25}] * 3
        more.append(("index", doc_id, docs[doc_id].routing, doc))
    more.append(("update", "order-two-levels", None, {"status": "shipped"}))
    cluster.bulk(index, more)
    cluster.flush(index)


_BIG_WORDS = ("lorem", "ipsum", "dolor", "sit", "amet", "ünïcødé", "数据", "🚀", "snapshot", "segment", "chunk",
              "stored", "field", "lucene", "shard", "\"quoted\"", "back\\slash", "tab\there")


def _big_text(nbytes: int, seed: int) -> str:
    rng = random.Random(seed)
    parts: list[str] = []
    size = 0
    while size < nbytes:
        piece = " ".join(rng.choices(_BIG_WORDS, k=200)) + f" {rng.getrandbits(64):x}\n"
        parts.append(piece)
        size += len(piece.encode())
    return "".join(parts)


def _fill_big(cluster: _Cluster, index: str, big_doc_mb: int) -> None:
    cluster.bulk(index, [("index", f"small-{i}", None, {"title": f"small {i}", "payload": "tiny"}) for i in range(5)])
    cluster.bulk(index, [("index", "medium", None, {"title": "medium", "payload": _big_text(300 * 1024, 2)})])
    cluster.bulk(index, [("index", "big", None, {"title": "big", "size_mb": big_doc_mb,
                                                 "payload": _big_text(big_doc_mb * 1024 * 1024, 1)})])
    cluster.bulk(index, [("index", f"small-{i}", None, {"title": f"small {i}", "payload": "tiny"}) for i in (5, 6)])
    cluster.flush(index)


def _portable_products_mapping() -> dict[str, Any]:
    # scaled_float lives in mapper-extras, which the Elasticsearch 8/9 integ-test-zips do not ship.
    mapping = copy.deepcopy(profile("products").mapping)
    mapping["properties"]["price"] = {"type": "double"}
    return mapping


def _fill_best(cluster: _Cluster, index: str) -> None:
    cluster.bulk(index, [("index", d.id, d.routing, d.source) for d in generate("products", 150, seed=21)])
    cluster.flush(index)
    cluster.bulk(index, [("index", d.id, d.routing, d.source) for d in generate("products", 150, seed=21, start=150)])
    cluster.flush(index)
    cluster.bulk(index, [("delete", f"products-{i:09d}", None, None) for i in range(0, 300, 30)])


def _fill_merged(cluster: _Cluster, index: str) -> None:
    for batch in range(4):
        ops: list[tuple[str, str, str | None, Any]] = [
            ("index", d.id, d.routing, d.source) for d in generate("logs", 100, seed=31, start=batch * 100)]
        if batch:
            ops += [("delete", f"logs-{i:09d}", None, None) for i in range((batch - 1) * 100, (batch - 1) * 100 + 10)]
            ops += [("update", f"logs-{i:09d}", None, {"reviewed": batch})
                    for i in range((batch - 1) * 100 + 50, (batch - 1) * 100 + 60)]
        cluster.bulk(index, ops)
        cluster.flush(index)
    cluster.client.indices.forcemerge(index=index, params={"max_num_segments": 1, "request_timeout": 300})


def _fill_segments(cluster: _Cluster, index: str) -> None:
    for batch in range(20):
        ops: list[tuple[str, str, str | None, Any]] = [
            ("index", f"seg-{batch:02d}-{k}", None, {"batch": batch, "k": k, "text": f"batch {batch} doc {k}"})
            for k in range(10)]
        if batch % 4 == 3:  # a delete and an update reaching back into earlier segments
            ops.append(("delete", f"seg-{batch - 3:02d}-0", None, None))
            ops.append(("update", f"seg-{batch - 2:02d}-1", None, {"touched": batch}))
        cluster.bulk(index, ops)
        cluster.flush(index)


def _soft_deletes_rejected(exc: TransportError) -> bool:
    return exc.status_code == 400 and "soft" in str(exc.info).lower() + str(exc.error).lower()


# --- reading back and snapshotting ---


def _read_back(cluster: _Cluster, index: str, shards: int) -> dict[int, set[Row]]:
    out: dict[int, set[Row]] = {}
    for shard in range(shards):
        rows: set[Row] = set()
        count = 0
        for hit in cluster.scroll_shard(index, shard):
            count += 1
            rows.add((hit["_index"], hit["_id"], hit.get("_routing"), canonical(hit["_source"])))
        if len(rows) != count:
            raise CorpusError(f"{index}[{shard}]: {count} hits but {len(rows)} distinct rows")
        out[shard] = rows
    total = sum(len(r) for r in out.values())
    count = int(cluster.client.count(index=index)["count"])
    if total != count:
        raise CorpusError(f"{index}: scrolled {total} documents but _count says {count}")
    return out


def _segment_stats(cluster: _Cluster, index: str) -> dict[str, int]:
    resp = cluster.client.indices.segments(index=index)
    stats = {"lucene_docs": 0, "deleted": 0, "segments": 0}
    for copies in resp["indices"][index]["shards"].values():
        for copy_ in copies:
            for seg in copy_["segments"].values():
                stats["segments"] += 1
                stats["lucene_docs"] += int(seg["num_docs"])
                stats["deleted"] += int(seg["deleted_docs"])
    return stats


def build_corpus(url: str, repo_path: str, *, engine: str, version: str, name_prefix: str,
                 big_doc_mb: int = 10) -> Corpus:
    """Create the corpus indices on the cluster at ``url``, snapshot them under ``repo_path`` and read them back."""
    if not re.fullmatch(r"[a-z0-9][a-z0-9_-]*", name_prefix):
        raise ValueError(f"name_prefix {name_prefix!r} must be a lowercase index-name prefix")
    began = time.monotonic()
    cluster = _Cluster(url, engine, version)
    notes: list[str] = []
    shards: dict[str, int] = {}
    p = name_prefix

    def create(index: str, n: int, settings: dict[str, Any] | None = None,
               mapping: dict[str, Any] | None = None) -> None:
        cluster.create(index, {"number_of_shards": n, **(settings or {})}, mapping)
        shards[index] = n

    if cluster.keep_segments:
        notes.append(f"{engine} {version}: merge on flush turned off for the churn, nested and segments indices")
    create(f"{p}-main", 3, cluster.keep_segments)
    _fill_churn(cluster, f"{p}-main", notes)
    try:
        with warnings.catch_warnings():  # Elasticsearch 7.6+ answers with a deprecation warning
            warnings.simplefilter("ignore", OpenSearchWarning)
            create(f"{p}-hard", 3, {"soft_deletes.enabled": False, **cluster.keep_segments})
    except TransportError as exc:
        if not _soft_deletes_rejected(exc):
            raise
        notes.append(f"{engine} {version} refuses index.soft_deletes.enabled=false: no {p}-hard "
                     f"({str(exc.info)[:200]})")
    else:
        _fill_churn(cluster, f"{p}-hard", notes)
    if cluster.typed:
        # Elasticsearch 6 leaves soft deletes off by default; 6.5+ can turn them on (as CCR needs).
        create(f"{p}-soft", 3, {"soft_deletes.enabled": True})
        _fill_churn(cluster, f"{p}-soft", notes)

    create(f"{p}-nested", 2, cluster.keep_segments, _nested_mapping())
    _fill_nested(cluster, f"{p}-nested")
    create(f"{p}-big", 1, mapping={"properties": {"payload": {"type": "text", "index": False}}})
    _fill_big(cluster, f"{p}-big", big_doc_mb)
    create(f"{p}-best", 2, {"codec": "best_compression"}, _portable_products_mapping())
    _fill_best(cluster, f"{p}-best")
    create(f"{p}-merged", 2, mapping=profile("logs").mapping)
    _fill_merged(cluster, f"{p}-merged")
    create(f"{p}-segments", 1, {"merge.policy.segments_per_tier": 50, **cluster.keep_segments})
    _fill_segments(cluster, f"{p}-segments")
    create(f"{p}-empty", 1)

    indices = list(shards)
    cluster.client.indices.refresh(index=",".join(indices))
    by_shard: dict[tuple[str, int], set[Row]] = {}
    for index in indices:
        for shard, rows in _read_back(cluster, index, shards[index]).items():
            by_shard[(index, shard)] = rows
    expected: set[Row] = set().union(*by_shard.values())

    repository = f"{REPOSITORY_PREFIX}-{p}"
    repo_dir = str(Path(repo_path) / p)
    register_fs_repository(cluster.client, repository, repo_dir)
    snapshot = f"{p}-snap"
    result = create_snapshot(cluster.client, repository, snapshot, indices=",".join(indices),
                             include_global_state=False, poll_s=0.5, timeout_s=600)
    if sorted(result.indices) != sorted(indices) or result.shards_successful != sum(shards.values()):
        raise CorpusError(f"snapshot {snapshot} holds {result.indices} with {result.shards_successful}/"
                          f"{result.shards_total} shards; wanted {indices} with {sum(shards.values())}")
    stats = {}
    for index in indices:
        stats[index] = {"docs": sum(len(by_shard[(index, s)]) for s in range(shards[index])),
                        **_segment_stats(cluster, index)}
    return Corpus(repo_dir=repo_dir, snapshot=snapshot, indices=indices, expected=expected, by_shard=by_shard,
                  shards=shards, stats=stats, engine=engine, version=version, repository=repository,
                  seconds=time.monotonic() - began, notes=notes)


def delete_corpus_indices(url: str, corpus: Corpus) -> None:
    """Drop the corpus's indices from the cluster (the snapshot stays in the repository)."""
    client = OpenSearch(hosts=[url], timeout=120)
    client.indices.delete(index=",".join(corpus.indices), params={"ignore_unavailable": "true"})

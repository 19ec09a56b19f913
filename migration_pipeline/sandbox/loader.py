"""Bulk-load generated documents into a sandbox cluster, fast."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import Any

import orjson
from opensearchpy import OpenSearch

from migration_pipeline.sandbox.datagen import GeneratedDoc, generate, profile
from migration_pipeline.sandbox.errors import SandboxError
from workers.common.cluster_info import server_version

BATCH_DOCS = 1000


@dataclass(frozen=True)
class LoadResult:
    """What a load wrote and how fast."""

    index: str
    docs: int
    source_bytes: int
    seconds: float

    @property
    def docs_per_s(self) -> float:
        """Documents per second."""
        return self.docs / self.seconds if self.seconds else 0.0


def create_index(client: OpenSearch, index: str, profile_name: str, shards: int, *, typed: bool) -> None:
    """Create ``index`` with the profile's mapping, ``shards`` primaries and no replicas (one node)."""
    mapping = profile(profile_name).mapping
    body = {
        "settings": {"index": {"number_of_shards": shards, "number_of_replicas": 0}},
        # Elasticsearch 6 needs its mapping under a type name.
        "mappings": {"_doc": mapping} if typed else mapping,
    }
    client.indices.create(index=index, body=body)


def _batches(docs: Iterator[GeneratedDoc], index: str, typed: bool) -> Iterator[tuple[bytes, int, int]]:
    lines: list[bytes] = []
    count = nbytes = 0
    for doc in docs:
        action: dict[str, Any] = {"_index": index, "_id": doc.id}
        if typed:
            action["_type"] = "_doc"
        if doc.routing is not None:
            action["routing"] = doc.routing
        lines.append(orjson.dumps({"index": action}))
        lines.append(doc.source)
        count += 1
        nbytes += len(doc.source)
        if count == BATCH_DOCS:
            yield b"\n".join(lines) + b"\n", count, nbytes
            lines, count, nbytes = [], 0, 0
    if lines:
        yield b"\n".join(lines) + b"\n", count, nbytes


def _send(client: OpenSearch, body: bytes) -> None:
    resp = client.transport.perform_request(
        "POST", "/_bulk", body=body, headers={"content-type": "application/x-ndjson"}
    )
    if resp.get("errors"):
        first = next(item for item in resp["items"] if next(iter(item.values())).get("error"))
        raise SandboxError(f"bulk load rejected a document: {orjson.dumps(first).decode()[:500]}")


def load(
    url: str,
    index: str,
    docs: int,
    *,
    profile_name: str = "logs",
    shards: int = 1,
    routing: bool = False,
    seed: int = 0,
    start: int = 0,
    threads: int = 2,
    progress: Callable[[int], None] | None = None,
) -> LoadResult:
    """Create ``index`` if missing and bulk-load ``docs`` generated documents into it, then refresh."""
    client = OpenSearch(hosts=[url], timeout=120, http_compress=False)
    version = server_version(client)
    typed = version.engine == "elasticsearch" and version.major < 7
    if not client.indices.exists(index=index):
        create_index(client, index, profile_name, shards, typed=typed)
    # Refreshes during a bulk load only cost time; the index is refreshed once at the end.
    client.indices.put_settings(index=index, body={"index": {"refresh_interval": "-1"}})
    began = time.monotonic()
    total = total_bytes = 0
    in_flight: set[Future[None]] = set()
    with ThreadPoolExecutor(max_workers=threads) as pool:
        for body, count, nbytes in _batches(
            generate(profile_name, docs, seed=seed, start=start, routing=routing), index, typed
        ):
            while len(in_flight) >= threads * 2:
                done, in_flight = wait(in_flight, return_when=FIRST_COMPLETED)
                for f in done:
                    f.result()
            in_flight.add(pool.submit(_send, client, body))
            total += count
            total_bytes += nbytes
            if progress:
                progress(count)
        for f in in_flight:
            f.result()
    client.indices.put_settings(index=index, body={"index": {"refresh_interval": None}})
    client.indices.refresh(index=index)
    return LoadResult(index, total, total_bytes, time.monotonic() - began)

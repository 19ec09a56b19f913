"""A client that writes continuously through the capture proxy, for the live demo: each write acknowledged is
recorded with its latency, each error counted, so that afterwards both clusters can be checked for every write.

Ids are the writer's own (``live-<n>``); each is created with a counter at 0, then updated in place a few times
(``_update`` with a partial document) before the next id starts: the final value of each id is known, and a write
lost or applied out of order shows as a wrong counter.
"""

from __future__ import annotations

import statistics
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import requests

UPDATES_PER_ID = 4
INDEX_BODY: dict[str, Any] = {
    "settings": {"index": {"number_of_shards": 2, "number_of_replicas": 0}},
    "mappings": {"properties": {"n": {"type": "long"}, "id": {"type": "keyword"}, "at": {"type": "date"}}},
}


@dataclass
class Write:
    """One acknowledged write: when it started (epoch seconds) and how long the client waited."""

    started: float
    seconds: float


@dataclass
class LiveTraffic:
    """The writer thread and what it saw."""

    url: str
    index: str
    pause_s: float = 0.02
    expected: dict[str, int] = field(default_factory=dict)  # id -> counter of its last acknowledged write
    writes: list[Write] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> None:
        """Start writing (a daemon thread)."""
        self._thread = threading.Thread(target=self._run, name="live-traffic", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop after the write in flight."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(60)

    def _run(self) -> None:
        session = requests.Session()
        number = 0
        while not self._stop.is_set():
            doc_id = f"live-{number:07d}"
            for counter in range(UPDATES_PER_ID + 1):
                if self._stop.is_set():
                    break
                if counter == 0:
                    method, path = "PUT", f"/{self.index}/_doc/{doc_id}"
                    body: dict[str, Any] = {"id": doc_id, "n": 0, "at": int(time.time() * 1000)}
                else:
                    method, path = "POST", f"/{self.index}/_update/{doc_id}"
                    body = {"doc": {"n": counter}}
                began, wall = time.monotonic(), time.time()
                try:
                    response = session.request(method, self.url + path, json=body, timeout=120)
                    ok = response.status_code in (200, 201)
                    if not ok:
                        self.errors.append(f"{method} {path}: HTTP {response.status_code} {response.text[:200]}")
                except requests.RequestException as exc:
                    ok = False
                    self.errors.append(f"{method} {path}: {exc.__class__.__name__}: {exc}")
                if ok:
                    self.writes.append(Write(wall, time.monotonic() - began))
                    self.expected[doc_id] = counter
                else:
                    break  # the next id: an update of a document whose creation failed would fail too
                time.sleep(self.pause_s)
            number += 1

    def latencies(self, since: float | None = None, until: float | None = None) -> list[float]:
        """Latencies (seconds) of the writes started in [since, until)."""
        return [w.seconds for w in self.writes
                if (since is None or w.started >= since) and (until is None or w.started < until)]


def percentile(values: list[float], fraction: float) -> float:
    """The ``fraction`` quantile (0 for no values)."""
    if not values:
        return 0.0
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[max(0, min(98, round(fraction * 100) - 1))]


def final_values(url: str, index: str, ids: list[str]) -> dict[str, int | None]:
    """Each id's counter on a cluster (None: missing)."""
    found: dict[str, int | None] = {}
    for at in range(0, len(ids), 1000):
        chunk = ids[at:at + 1000]
        response = requests.post(f"{url}/{index}/_mget", json={"ids": chunk}, timeout=60)
        response.raise_for_status()
        for doc in response.json()["docs"]:
            found[doc["_id"]] = doc["_source"]["n"] if doc.get("found") else None
    return found

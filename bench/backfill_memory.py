"""Backfill memory: the worker's peak RSS does not grow with the shard, and 20 MB documents go through.

Single-shard indices on the sandbox's Elasticsearch 7.10.2, snapshotted, each backfilled into OpenSearch 2.19 by
``python -m workers.rfs`` in a process of its own (defaults: up to 10 requests of 10 MiB in flight):
  tiny    N / 10 `logs` documents (too few to fill the requests in flight: a floor, not the bound);
  shard   N `logs` documents;
  3x      3 x N `logs` documents (the same profile, three times the shard);
  big     N / 100 `logs` documents and 5 documents of 20 MB each.
For each it prints documents, MB on disk, seconds, the worker's peak RSS (from wait4) and the target's count.
The worker holds at most ``max_connections x max_bulk_bytes`` of request bodies and one stored-fields chunk
(README), so once a shard fills the requests in flight (shard, 3x) its peak should stay the same.

    .venv/bin/python bench/backfill_memory.py [--docs 200000] [--keep]      # about 20 minutes
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from opensearchpy import OpenSearch

from migration_pipeline.sandbox import loader, manager
from migration_pipeline.sandbox.datagen import PROFILES
from workers.snapshot.create import create_snapshot, register_fs_repository

RESULTS = Path(__file__).parent / "results"
BIG_DOC_MB = 20
BIG_DOCS = 5


def load_big(url: str, index: str, docs: int) -> None:
    """``docs`` logs documents, then the 20 MB ones (a 20 MB string field, stored but not indexed)."""
    loader.load(url, index, docs, profile_name="logs", shards=1, routing=False, seed=11)
    client = OpenSearch(hosts=[url], timeout=300)
    client.indices.put_mapping(index=index, body={"properties": {"payload": {"type": "text", "index": False}}})
    for i in range(BIG_DOCS):
        body = json.dumps({"message": f"big {i}", "payload": "x" * (BIG_DOC_MB << 20)})
        client.index(index=index, id=f"big-{i}", body=body, request_timeout=300)
    client.indices.refresh(index=index)


def run_worker(repo: str, snapshot: str, index: str, target_url: str) -> dict[str, float]:
    """One shard in a process of its own; its peak RSS from wait4 (this process's other children do not count)."""
    began = time.monotonic()
    with tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "workers.rfs", "--snapshot-repo", Path(repo).as_uri(), "--snapshot", snapshot,
             "--index", index, "--shard", "0", "--target-endpoint", target_url, "--target-timeout", "300",
             "--dead-letter", "off", "--progress", "none", "--json"],
            stdout=subprocess.PIPE, stderr=err, cwd=Path(__file__).parent.parent)
        assert proc.stdout is not None
        out = proc.stdout.read()
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        if proc.returncode != 0:
            err.seek(0)
            raise SystemExit(f"worker on {index} exited {proc.returncode}: {err.read().decode()[-2000:]}")
    result = json.loads(out)
    return {"seconds": round(time.monotonic() - began, 1), "docs_written": result["docs_written"],
            "peak_rss_mb": round(usage.ru_maxrss / 1024, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--docs", type=int, default=200_000, help="documents of the 'shard' case (default 200000)")
    parser.add_argument("--keep", action="store_true", help="leave the benchmark sandbox running")
    args = parser.parse_args()
    name = "bench-backfill-memory"
    state = manager.up(manager.UpRequest(heap="1g"), name=name)
    source_url, target_url = state.engines["source"].url, state.engines["target"].url
    source, target = OpenSearch(hosts=[source_url], timeout=300), OpenSearch(hosts=[target_url], timeout=300)
    try:
        cases = {"tiny": args.docs // 10, "shard": args.docs, "3x": args.docs * 3, "big": args.docs // 100}
        for case, docs in cases.items():
            index = f"mem-{case}"
            if source.indices.exists(index=index):
                source.indices.delete(index=index)
            print(f"loading {index} ...", flush=True)
            if case == "big":
                load_big(source_url, index, docs)
            else:
                loader.load(source_url, index, docs, profile_name="logs", shards=1, routing=False, seed=11)
        repo = str(Path(state.engines["source"].repo_path) / "bench-memory")
        register_fs_repository(source, "bench-memory", repo)
        snapshot = f"m{int(time.time())}"
        create_snapshot(source, "bench-memory", snapshot, indices=",".join(f"mem-{c}" for c in cases))
        rows = []
        for case in cases:
            index = f"mem-{case}"
            if target.indices.exists(index=index):
                target.indices.delete(index=index)
            target.indices.create(index=index, body={
                "settings": {"index": {"number_of_shards": 1, "number_of_replicas": 0}},
                "mappings": {**PROFILES["logs"].mapping, "properties": {
                    **PROFILES["logs"].mapping["properties"], "payload": {"type": "text", "index": False}}}})
            stats = source.indices.stats(index=index, metric="docs,store")["indices"][index]["primaries"]
            print(f"backfilling {index} ...", flush=True)
            measured = run_worker(repo, snapshot, index, target_url)
            target.indices.refresh(index=index)
            rows.append({"case": case, "docs": stats["docs"]["count"],
                         "shard_mb": round(stats["store"]["size_in_bytes"] / 1e6, 1), **measured,
                         "target_count": target.count(index=index)["count"]})
            print(f"  {rows[-1]}", flush=True)
        print(f"\n{'case':<6} {'docs':>8} {'shard MB':>9} {'seconds':>8} {'peak RSS MB':>12} {'on target':>10}")
        for r in rows:
            print(f"{r['case']:<6} {r['docs']:>8} {r['shard_mb']:>9} {r['seconds']:>8} {r['peak_rss_mb']:>12} "
                  f"{r['target_count']:>10}")
        bad = [r["case"] for r in rows if r["target_count"] != r["docs"] or r["docs_written"] != r["docs"]]
        if bad:
            raise SystemExit(f"documents missing on the target for: {', '.join(bad)}")
        RESULTS.mkdir(exist_ok=True)
        out = RESULTS / f"backfill_memory-{time.strftime('%Y%m%d-%H%M%S')}.json"
        out.write_text(json.dumps({"docs": args.docs, "rows": rows}, indent=2))
        print(f"\nwritten to {out}")
    finally:
        if not args.keep:
            manager.down(name)


if __name__ == "__main__":
    main()

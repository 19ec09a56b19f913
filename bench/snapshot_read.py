"""Decode-only throughput of the snapshot reader: snapshot -> documents (discarded), on one core, and peak RSS.

Builds a single-shard `logs`-profile index of about 1 GB of source on the sandbox's Elasticsearch 7.10.2,
snapshots it to a filesystem repository, then reads it back in a separate process pinned to one CPU.
Goal (issue 3): 100,000 documents/s and 200 MB/s of source per core, RSS under 256 MB.

    .venv/bin/python bench/snapshot_read.py [--docs 450000] [--keep]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

RESULTS = Path(__file__).parent / "results"


def decode(repo: str, snapshot: str, verify: bool) -> dict[str, float]:
    """Read every document of the snapshot and discard it; report throughput and peak RSS."""
    from workers.documents.reader import ReadSummary, open_shard
    from workers.snapshot.blobstore import open_blob_store
    from workers.snapshot.repository import SnapshotRepository

    began = time.perf_counter()
    repository = SnapshotRepository(open_blob_store(repo))
    summary = ReadSummary()
    for ref in repository.indices(snapshot):
        for shard in range(repository.index_metadata(snapshot, ref.name).number_of_shards):
            reader = open_shard(repository, snapshot, ref.name, shard, verify_checksums=verify)
            for _ in reader.documents():
                pass
            summary.add(reader.summary)
    seconds = time.perf_counter() - began
    return {"docs": summary.live, "source_mb": round(summary.source_bytes / 1e6, 1), "seconds": round(seconds, 2),
            "docs_per_s": round(summary.live / seconds), "mb_per_s": round(summary.source_bytes / 1e6 / seconds, 1),
            "max_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}


def _machine() -> dict[str, object]:
    meminfo = Path("/proc/meminfo").read_text().splitlines()
    mem_kb = next(int(line.split()[1]) for line in meminfo if line.startswith("MemTotal"))
    return {"cpus": os.cpu_count(), "memory_gb": round(mem_kb / 1024 / 1024, 1), "python": platform.python_version()}


def _run_decode(repo: str, snapshot: str, verify: bool) -> dict[str, float]:
    cmd = [sys.executable, __file__, "--decode", repo, snapshot] + ([] if verify else ["--no-verify"])
    if shutil.which("taskset"):
        cmd = ["taskset", "-c", "0", *cmd]  # one core
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    return dict(json.loads(out.strip().splitlines()[-1]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--docs", type=int, default=450_000, help="documents in the shard (~2.4 KB each)")
    parser.add_argument("--keep", action="store_true", help="leave the benchmark sandbox running")
    parser.add_argument("--decode", nargs=2, metavar=("REPO", "SNAPSHOT"), help=argparse.SUPPRESS)
    parser.add_argument("--no-verify", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.decode:
        print(json.dumps(decode(args.decode[0], args.decode[1], not args.no_verify)))
        return

    from opensearchpy import OpenSearch

    from migration_pipeline.sandbox import loader, manager
    from workers.common.cluster_info import observe
    from workers.snapshot.create import create_snapshot, register_fs_repository

    name = "bench-read"
    state = manager.up(manager.UpRequest(target=None), name=name)
    try:
        node = state.engines["source"]
        client = OpenSearch(hosts=[node.url], timeout=300)
        index = "bench-logs"
        if observe(client, node.url).indices.get(index) != args.docs:
            if client.indices.exists(index=index):
                client.indices.delete(index=index)
            print(f"loading {args.docs} logs documents into one shard ...", flush=True)
            loaded = loader.load(node.url, index, args.docs, profile_name="logs", shards=1, seed=11)
            print(f"loaded {loaded.source_bytes / 1e9:.2f} GB of source in {loaded.seconds:.0f}s", flush=True)
        repo = str(Path(node.repo_path) / "bench")
        register_fs_repository(client, "bench", repo)
        snapshot = f"s{int(time.time())}"
        create_snapshot(client, "bench", snapshot, indices=index)
        results = {"machine": _machine(), "docs": args.docs,
                   "with_checksums": _run_decode(repo, snapshot, verify=True),
                   "decode_only": _run_decode(repo, snapshot, verify=False)}
    finally:
        if not args.keep:
            manager.down(name)
    print(f"machine: {results['machine']}")
    print(f"{'run (1 core)':26} {'docs':>9} {'source MB':>10} {'s':>7} {'docs/s':>9} {'MB/s':>7} {'RSS MB':>7}")
    for label in ("decode_only", "with_checksums"):
        r = results[label]
        assert isinstance(r, dict)
        print(f"{label:26} {r['docs']:>9} {r['source_mb']:>10} {r['seconds']:>7} {r['docs_per_s']:>9} "
              f"{r['mb_per_s']:>7} {r['max_rss_mb']:>7}")
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "snapshot_read.json").write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()

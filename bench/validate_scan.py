"""Validation cost: the target scan's fingerprinting against a plain scan, and the backfill with and without its
fingerprints.

One run, one machine, the data of bench/backfill.py (a multi-shard `logs` index on Elasticsearch 7.10.2,
snapshotted) backfilled into OpenSearch 2.19, after one backfill that warms the target's JIT up (not measured):
  1. the backfill, every shard in one run (`--shard all`), with the content fingerprints (the default) and without
     (`--no-fingerprint`), alternating, in rounds (default 2); the median of each is reported, with its ratio;
  2. on the backfilled target: the validation's target scan (point in time + search_after, sliced, every document
     parsed, made canonical and hashed) against the same scan doing nothing with the documents, alternating, in
     rounds; the median of each is reported, with its ratio. The fingerprints are checked equal on both sides.

    .venv/bin/python bench/validate_scan.py [--docs 1000000] [--shards 4] [--rounds 2] [--warmup 1]
                                            [--connections 4] [--keep]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from pathlib import Path

from opensearchpy import OpenSearch

from migration_pipeline.sandbox import loader, manager
from migration_pipeline.sandbox.datagen import PROFILES
from workers.common.cluster_info import observe
from workers.common.clusters import ClusterConnection
from workers.common.fingerprint import Fingerprint
from workers.rfs.options import BackfillOptions
from workers.rfs.progress import Progress
from workers.rfs.worker import run_shards
from workers.snapshot.blobstore import open_blob_store
from workers.snapshot.create import create_snapshot, register_fs_repository
from workers.validate.target_scan import fingerprint_index, plain_scan, scan_client

RESULTS = Path(__file__).parent / "results"
INDEX = "bench-validate"
COORDINATION = ".migrations_working_state"


def machine() -> dict[str, object]:
    meminfo = Path("/proc/meminfo").read_text().splitlines()
    mem_kb = next(int(line.split()[1]) for line in meminfo if line.startswith("MemTotal"))
    return {"cpus": os.cpu_count(), "memory_gb": round(mem_kb / 1024 / 1024, 1), "python": platform.python_version()}


def own_cpu_seconds() -> float:
    t = os.times()
    return t.user + t.system


def process_cpu_seconds(pid: int) -> float:
    """User and system CPU time of a process (the target's JVM), from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def reset_target(target: OpenSearch, shards: int) -> None:
    for name in (INDEX, COORDINATION):
        if target.indices.exists(index=name):
            target.indices.delete(index=name)
    target.indices.create(index=INDEX, body={
        "settings": {"index": {"number_of_shards": shards, "number_of_replicas": 0}},
        "mappings": PROFILES["logs"].mapping})


def backfill(repo: str, snapshot: str, target_url: str, target: OpenSearch, target_pid: int, shards: int, docs: int,
             fingerprint: bool) -> dict[str, float | str]:
    reset_target(target, shards)
    options = BackfillOptions(target=ClusterConnection(endpoint=target_url, timeout_s=300), dead_letter="off",
                              fingerprint=fingerprint)
    label = "backfill, fingerprints" if fingerprint else "backfill, no fingerprints"
    print(f"running {label} ...", flush=True)
    cpu, target_cpu, began = own_cpu_seconds(), process_cpu_seconds(target_pid), time.monotonic()
    results = run_shards(open_blob_store(repo), snapshot, INDEX, list(range(shards)), options, Progress())
    target.indices.refresh(index=INDEX)
    seconds, cpu = time.monotonic() - began, own_cpu_seconds() - cpu
    target_cpu = process_cpu_seconds(target_pid) - target_cpu
    written = sum(r.docs_written for r in results)
    if written != docs or target.count(index=INDEX)["count"] != docs:
        raise SystemExit(f"{label}: {written} documents written, expected {docs}")
    row: dict[str, float | str] = {"contender": label, "seconds": round(seconds, 1),
                                   "docs_per_s": round(docs / seconds), "client_cpu_s": round(cpu, 1),
                                   "target_cpu_s": round(target_cpu, 1),
                                   # The robust figure on a shared machine: CPU per document, client and target.
                                   "client_us_per_doc": round(cpu / docs * 1e6, 1),
                                   "target_us_per_doc": round(target_cpu / docs * 1e6, 1)}
    print(f"  {row}", flush=True)
    return row


def scan_row(label: str, seconds: float, docs: int, cpu: float) -> dict[str, float | str]:
    row: dict[str, float | str] = {"contender": label, "seconds": round(seconds, 1),
                                   "docs_per_s": round(docs / seconds), "client_cpu_s": round(cpu, 1),
                                   "client_us_per_doc": round(cpu / docs * 1e6, 1)}
    print(f"  {row}", flush=True)
    return row


def median(rows: list[dict[str, float | str]], label: str) -> float:
    return statistics.median(float(r["docs_per_s"]) for r in rows if r["contender"] == label)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--docs", type=int, default=1_000_000)
    parser.add_argument("--shards", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--warmup", type=int, default=1, help="backfills run first and not measured")
    parser.add_argument("--connections", type=int, default=4, help="scan slices in flight")
    parser.add_argument("--keep", action="store_true", help="leave the benchmark sandbox running")
    args = parser.parse_args()
    name = "bench-validate"
    state = manager.up(manager.UpRequest(heap="1g"), name=name)
    source_url, target_url = state.engines["source"].url, state.engines["target"].url
    target_pid = state.engines["target"].pid
    source, target = OpenSearch(hosts=[source_url], timeout=300), OpenSearch(hosts=[target_url], timeout=300)
    rows: list[dict[str, float | str]] = []
    try:
        if observe(source, source_url).indices.get(INDEX) != args.docs:
            if source.indices.exists(index=INDEX):
                source.indices.delete(index=INDEX)
            print(f"loading {args.docs} documents ({args.shards} shards) ...", flush=True)
            loader.load(source_url, INDEX, args.docs, profile_name="logs", shards=args.shards, routing=True, seed=5)
        repo = str(Path(state.engines["source"].repo_path) / "bench")
        register_fs_repository(source, "bench", repo)
        snapshot = f"s{int(time.time())}"
        create_snapshot(source, "bench", snapshot, indices=INDEX)

        # A fresh JVM indexes slowly until its JIT settles: one backfill first, not measured.
        for _ in range(args.warmup):
            backfill(repo, snapshot, target_url, target, target_pid, args.shards, args.docs, True)
        # Backfill: alternate, and finish with fingerprints on (the scan below is checked against them).
        flag = True
        for r in range(args.rounds):
            for flag in ((False, True) if r % 2 == 0 else (True, False)):
                rows.append(backfill(repo, snapshot, target_url, target, target_pid, args.shards, args.docs, flag))
        if not flag:  # the last run went without: once more with, for the scan's check (a row like the others)
            rows.append(backfill(repo, snapshot, target_url, target, target_pid, args.shards, args.docs, True))
        recorded = Fingerprint()
        target.indices.refresh(index=COORDINATION)  # the last completions may not be searchable yet
        for hit in target.search(index=COORDINATION, body={"size": 100, "query": {"term": {"status": "completed"}}}
                                 )["hits"]["hits"]:
            fp = hit["_source"]["fingerprint"]["indices"][INDEX]
            recorded.merge(Fingerprint.from_dict(fp))

        client = scan_client(ClusterConnection(endpoint=target_url, timeout_s=300), args.connections)
        for r in range(args.rounds):
            for hashing in ((False, True) if r % 2 == 0 else (True, False)):
                cpu, began = own_cpu_seconds(), time.monotonic()
                if hashing:
                    print("running target scan, fingerprinting ...", flush=True)
                    found, stats = fingerprint_index(client, INDEX, connections=args.connections)
                    if found.digest != recorded.digest or found.count != args.docs:
                        raise SystemExit(f"scan fingerprint {found.digest} ({found.count}) differs from the "
                                         f"backfill's {recorded.digest} ({recorded.count})")
                    label = "target scan, fingerprinting"
                else:
                    print("running plain PIT + search_after scan ...", flush=True)
                    stats = plain_scan(client, INDEX, connections=args.connections)
                    label = "plain PIT + search_after scan"
                if stats.documents != args.docs:
                    raise SystemExit(f"{label}: {stats.documents} documents, expected {args.docs}")
                rows.append(scan_row(f"{label} ({stats.method}, {stats.slices} slices)", time.monotonic() - began,
                                     args.docs, own_cpu_seconds() - cpu))
    finally:
        if not args.keep:
            manager.down(name)
    labels = sorted({str(r["contender"]) for r in rows})
    medians = {label: median(rows, label) for label in labels}
    print("\nmedians (docs/s):")
    for label, value in medians.items():
        print(f"  {label}: {value:,.0f}")
    fp_on, fp_off = medians["backfill, fingerprints"], medians["backfill, no fingerprints"]
    scan_on = next(v for k, v in medians.items() if k.startswith("target scan"))
    scan_off = next(v for k, v in medians.items() if k.startswith("plain"))
    summary = {"backfill_with_over_without": round(fp_on / fp_off, 3),
               "scan_fingerprinting_over_plain": round(scan_on / scan_off, 3)}
    print(f"backfill with fingerprints / without: {summary['backfill_with_over_without']:.3f} "
          f"({(fp_on / fp_off - 1) * 100:+.1f}% docs/s)")
    print(f"fingerprinting scan / plain scan: {summary['scan_fingerprinting_over_plain']:.3f}")
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "validate_scan.json").write_text(json.dumps(
        {"machine": machine(), "docs": args.docs, "shards": args.shards, "rows": rows, "medians": medians,
         "summary": summary}, indent=2) + "\n")


if __name__ == "__main__":
    main()

"""Validation cost: the target scan's fingerprinting against a plain scan, and the backfill with and without its
fingerprints.

One run, one machine, the data of bench/backfill.py (a multi-shard `logs` index on Elasticsearch 7.10.2,
snapshotted) backfilled into OpenSearch 2.19:
  1. one full backfill with fingerprints, not measured (a fresh JVM indexes slowly until its JIT settles); it leaves
     the target holding every document and the shards' recorded fingerprints;
  2. on that target: the validation's target scan (point in time + search_after, sliced, every document parsed,
     made canonical and hashed) against the same scan doing nothing with the documents, in pairs (the order
     alternating from round to round); the scan's fingerprint is checked equal to the backfill's;
  3. the backfill of `--backfill-shards` shards (one by default: a quarter of the documents, so that a round takes a
     minute, not four) with the content fingerprints (the default) and without (`--no-fingerprint`), in pairs.
Each pair gives a ratio; the median of the ratios is the figure (on a shared 2-core machine a round's speed varies
by more than the difference measured: a pair run back to back shares most of that variation). CPU per document,
client and target, is printed too: it does not depend on what else the machine does.

    .venv/bin/python bench/validate_scan.py [--docs 1000000] [--shards 4] [--rounds 3] [--backfill-shards 1]
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
SCAN_ON, SCAN_OFF = "target scan, fingerprinting", "plain PIT + search_after scan"
BACKFILL_ON, BACKFILL_OFF = "backfill, fingerprints", "backfill, no fingerprints"


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


def backfill(repo: str, snapshot: str, target_url: str, target: OpenSearch, target_pid: int, shards: int,
             fingerprint: bool, only: int | None = None) -> dict[str, float | str]:
    reset_target(target, shards)
    options = BackfillOptions(target=ClusterConnection(endpoint=target_url, timeout_s=300), dead_letter="off",
                              fingerprint=fingerprint)
    label = BACKFILL_ON if fingerprint else BACKFILL_OFF
    print(f"running {label} ...", flush=True)
    cpu, target_cpu, began = own_cpu_seconds(), process_cpu_seconds(target_pid), time.monotonic()
    ids = list(range(shards if only is None else only))
    results = run_shards(open_blob_store(repo), snapshot, INDEX, ids, options, Progress())
    target.indices.refresh(index=INDEX)
    seconds, cpu = time.monotonic() - began, own_cpu_seconds() - cpu
    target_cpu = process_cpu_seconds(target_pid) - target_cpu
    docs = sum(r.docs_written for r in results)
    if not docs or target.count(index=INDEX)["count"] != docs:
        raise SystemExit(f"{label}: {docs} documents written, {target.count(index=INDEX)['count']} on the target")
    row: dict[str, float | str] = {"contender": label, "docs": docs, "seconds": round(seconds, 1),
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


def pair_ratios(rows: list[dict[str, float | str]], on: str, off: str) -> list[float]:
    """docs/s with over without, per pair (rows come in pairs, in either order)."""
    ratios = []
    for a, b in zip(rows[0::2], rows[1::2], strict=True):
        pair = {str(a["contender"]).split(" (")[0]: float(a["docs_per_s"]),
                str(b["contender"]).split(" (")[0]: float(b["docs_per_s"])}
        ratios.append(round(pair[on] / pair[off], 3))
    return ratios


def mean_of(rows: list[dict[str, float | str]], label: str, key: str) -> float:
    return round(statistics.mean(float(r[key]) for r in rows if str(r["contender"]).startswith(label)), 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--docs", type=int, default=1_000_000)
    parser.add_argument("--shards", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=3, help="pairs of each comparison")
    parser.add_argument("--backfill-shards", type=int, default=1, help="shards backfilled in each measured round")
    parser.add_argument("--connections", type=int, default=4, help="scan slices in flight")
    parser.add_argument("--keep", action="store_true", help="leave the benchmark sandbox running")
    parser.add_argument("--backfill-only", action="store_true", help="skip the scans (the backfill pairs only)")
    args = parser.parse_args()
    name = "bench-validate"
    began_all = time.monotonic()
    state = manager.up(manager.UpRequest(heap="1g"), name=name)
    source_url, target_url = state.engines["source"].url, state.engines["target"].url
    target_pid = state.engines["target"].pid
    source, target = OpenSearch(hosts=[source_url], timeout=300), OpenSearch(hosts=[target_url], timeout=300)
    scans: list[dict[str, float | str]] = []
    backfills: list[dict[str, float | str]] = []
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

        print("warm-up: the whole index, with fingerprints (not measured) ...", flush=True)
        warmup = backfill(repo, snapshot, target_url, target, target_pid, args.shards, True)
        if warmup["docs"] != args.docs:
            raise SystemExit(f"the warm-up backfill wrote {warmup['docs']} documents, expected {args.docs}")
        recorded = Fingerprint()
        target.indices.refresh(index=COORDINATION)  # the last completions may not be searchable yet
        for hit in target.search(index=COORDINATION, body={"size": 100, "query": {"term": {"status": "completed"}}}
                                 )["hits"]["hits"]:
            fp = hit["_source"]["fingerprint"]["indices"][INDEX]
            recorded.merge(Fingerprint.from_dict(fp))

        client = scan_client(ClusterConnection(endpoint=target_url, timeout_s=300), args.connections)
        for r in range(0 if args.backfill_only else args.rounds):
            for hashing in ((False, True) if r % 2 == 0 else (True, False)):
                cpu, began = own_cpu_seconds(), time.monotonic()
                if hashing:
                    print("running target scan, fingerprinting ...", flush=True)
                    found, stats = fingerprint_index(client, INDEX, connections=args.connections)
                    if found.digest != recorded.digest or found.count != args.docs:
                        raise SystemExit(f"scan fingerprint {found.digest} ({found.count}) differs from the "
                                         f"backfill's {recorded.digest} ({recorded.count})")
                    label = SCAN_ON
                else:
                    print("running plain PIT + search_after scan ...", flush=True)
                    stats = plain_scan(client, INDEX, connections=args.connections)
                    label = SCAN_OFF
                if stats.documents != args.docs:
                    raise SystemExit(f"{label}: {stats.documents} documents, expected {args.docs}")
                scans.append(scan_row(f"{label} ({stats.method}, {stats.slices} slices)", time.monotonic() - began,
                                      args.docs, own_cpu_seconds() - cpu))

        for r in range(args.rounds):
            for flag in ((False, True) if r % 2 == 0 else (True, False)):
                backfills.append(backfill(repo, snapshot, target_url, target, target_pid, args.shards, flag,
                                          only=args.backfill_shards))
    finally:
        if not args.keep:
            manager.down(name)
    scan_ratios = pair_ratios(scans, SCAN_ON, SCAN_OFF)
    backfill_ratios = pair_ratios(backfills, BACKFILL_ON, BACKFILL_OFF)
    summary = {
        "scan_fingerprinting_over_plain": statistics.median(scan_ratios) if scan_ratios else None,
        "scan_ratios": scan_ratios,
        "backfill_with_over_without": statistics.median(backfill_ratios),
        "backfill_ratios": backfill_ratios,
        "backfill_client_us_per_doc": {label: mean_of(backfills, label, "client_us_per_doc")
                                       for label in (BACKFILL_ON, BACKFILL_OFF)},
        "backfill_target_us_per_doc": {label: mean_of(backfills, label, "target_us_per_doc")
                                       for label in (BACKFILL_ON, BACKFILL_OFF)},
        "scan_client_us_per_doc": {label: mean_of(scans, label, "client_us_per_doc") for label in (SCAN_ON, SCAN_OFF)}
        if scans else None,
        "minutes": round((time.monotonic() - began_all) / 60, 1),
    }
    if scan_ratios:
        print(f"\ntarget scan, fingerprinting / plain, per pair: {scan_ratios} -> median "
              f"{summary['scan_fingerprinting_over_plain']:.3f}")
    print(f"backfill with fingerprints / without, per pair: {backfill_ratios} -> median "
          f"{summary['backfill_with_over_without']:.3f}")
    for key in ("backfill_client_us_per_doc", "backfill_target_us_per_doc", "scan_client_us_per_doc"):
        print(f"{key}: {summary[key]}")
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "validate_scan.json").write_text(json.dumps(
        {"machine": machine(), "docs": args.docs, "shards": args.shards, "warmup": warmup, "scans": scans,
         "backfills": backfills, "summary": summary}, indent=2) + "\n")


if __name__ == "__main__":
    main()

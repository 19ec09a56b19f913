"""Resumption after a SIGKILL mid-shard: from a checkpoint past zero, to exact parity, without re-sending."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from opensearchpy import OpenSearch
from opensearchpy.exceptions import NotFoundError, TransportError

from migration_pipeline.sandbox.state import SandboxState
from tests.conftest import unique
from tests.workers.rfs.helpers import build_snapshot, ids_before, target_rows
from workers.common.clusters import ClusterConnection
from workers.common.fingerprint import Fingerprint
from workers.validate.target_scan import fingerprint_index, scan_client


def _worker(snap_uri: str, snapshot: str, index: str, target: str, coordination: str, dead: Path) -> list[str]:
    return [sys.executable, "-m", "workers.rfs", "--snapshot-repo", snap_uri, "--snapshot", snapshot,
            "--index", index, "--shard", "0", "--target-endpoint", target, "--coordination-index", coordination,
            "--documents-per-bulk-request", "100", "--max-connections", "2", "--lease-seconds", "3",
            "--dead-letter", str(dead), "--json", "--progress", "none"]


def test_sigkill_then_resume(sandbox: SandboxState, tmp_path: Path) -> None:
    node, target = sandbox.engines["source"], sandbox.engines["target"].url
    snap = build_snapshot(node.url, node.repo_path, docs=6000, shards=1, profile="products")
    coordination = unique(".mws")
    cmd = _worker(snap.repo_uri, snap.snapshot, snap.index, target, coordination, tmp_path / "dead")
    client = OpenSearch(hosts=[target])
    key = f"{snap.snapshot}/{snap.index}/0"

    first = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    checkpoint = None
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and first.poll() is None:
        try:
            state = client.get(index=coordination, id=key)["_source"]
        except (NotFoundError, TransportError):  # not written yet, or the index still being allocated
            state = {}
        if state.get("checkpoint") and state.get("docs_written", 0) >= 1000:
            checkpoint = state["checkpoint"]
            break
        time.sleep(0.05)
    if checkpoint is None:
        first.kill()
        _out, err = first.communicate()
        raise AssertionError(f"the worker never checkpointed (exit {first.returncode}): {err.decode()[-2000:]}")
    os.kill(first.pid, signal.SIGKILL)
    first.wait()
    # The dead worker's lease runs out. A checkpoint write it sent just before dying may land meanwhile, so
    # the state is read after the wait, as the next worker will find it.
    time.sleep(3.5)
    killed = client.get(index=coordination, id=key)["_source"]
    assert killed["status"] == "in_progress" and killed["docs_written"] < 6000
    resume_point = killed["checkpoint"]

    second = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert second.returncode == 0, second.stderr
    result = json.loads(second.stdout)
    assert result["status"] == "completed"
    assert result["resumed_from"] == resume_point and resume_point["doc"] > 0
    assert target_rows(target, snap.index) == snap.expected  # exact parity, no duplicates

    # Documents before the checkpoint were not sent again: they are still at version 1.
    versions = {h["_id"]: h["_version"] for h in client.search(
        index=snap.index, body={"size": 10000, "version": True, "_source": False})["hits"]["hits"]}
    before = ids_before(snap, 0, resume_point)
    assert len(before) >= 1000 and all(versions[doc_id] == 1 for doc_id in before)
    done = client.get(index=coordination, id=key)["_source"]
    assert done["status"] == "completed" and done["attempts"] == 2 and done["docs_written"] == 6000
    # The content fingerprint went over the kill in the checkpoint: it covers every document exactly once, as the
    # target holds them.
    recorded = Fingerprint.from_dict(done["fingerprint"]["indices"][snap.index])
    found, _ = fingerprint_index(scan_client(ClusterConnection(endpoint=target), 2), snap.index)
    assert recorded.count == found.count == 6000 and recorded.digest == found.digest

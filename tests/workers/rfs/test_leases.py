"""Leases on the real target: refused while running, taken over once expired, and a worker that lost its lease
can no longer write the shard's checkpoint."""

from __future__ import annotations

import time

import pytest
from opensearchpy import OpenSearch

from migration_pipeline.sandbox.state import SandboxState
from tests.conftest import unique
from workers.documents.reader import ShardPosition
from workers.rfs.coordination import LeaseHeldError, LeaseLostError, WorkCoordinator

LEASE_S = 2.0


def _coordinator(client: OpenSearch, index: str, worker: str) -> WorkCoordinator:
    return WorkCoordinator(client, index, worker, LEASE_S, "snap", "logs", 3)


def test_an_expired_lease_is_taken_over_with_its_checkpoint(sandbox: SandboxState) -> None:
    client = OpenSearch(hosts=[sandbox.engines["target"].url], timeout=60)
    index = unique(".mws")
    first = _coordinator(client, index, "worker-a")
    first.ensure_index()
    first.acquire()
    first.checkpoint(ShardPosition("_4", 1200), docs_written=5000, bytes_written=7_000_000)

    second = _coordinator(client, index, "worker-b")
    with pytest.raises(LeaseHeldError, match=r"snap/logs/3 is leased by worker worker-a for \ds more"):
        second.acquire()

    time.sleep(LEASE_S + 0.5)  # worker-a is "dead": it renews no more
    work = second.acquire()
    assert (work.status, work.checkpoint, work.docs_written, work.attempts) == \
        ("in_progress", ShardPosition("_4", 1200), 5000, 2)
    assert work.raw["lease_owner"] == "worker-b"

    # worker-a wakes up: its writes are conditional on what it last wrote, so it cannot move the checkpoint.
    with pytest.raises(LeaseLostError, match="taken over by another worker"):
        first.checkpoint(ShardPosition("_9", 1), docs_written=9999, bytes_written=1)
    with pytest.raises(LeaseLostError):
        first.complete(9999, 1, {})
    recorded = _coordinator(client, index, "reader").read()
    assert recorded is not None
    assert (recorded.checkpoint, recorded.docs_written, recorded.raw["lease_owner"]) == \
        (ShardPosition("_4", 1200), 5000, "worker-b")

    # The new holder goes on, and a completed shard is left alone unless forced.
    second.complete(6000, 8_000_000, {})
    done = _coordinator(client, index, "worker-c").acquire()
    assert done.completed and done.docs_written == 6000
    forced = _coordinator(client, index, "worker-c").acquire(force=True)
    assert (forced.status, forced.checkpoint, forced.docs_written) == ("in_progress", None, 0)

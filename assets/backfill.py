"""The document backfill: one run per shard (a worker through Pipes), then a per-index count parity check."""

# No "from __future__ import annotations": Dagster inspects the context annotation at definition time.
import re
from typing import Any

import dagster as dg

from assets.approvals import GATE_ASSETS, gated, metadata_of, releasing, require_approval
from assets.partitions import GROUP, SHARDS
from resources.kubernetes_pods import PodUnschedulable
from resources.shard_worker import ShardWorkerResource, worker_request
from resources.workflow import WorkflowResource
from workers.common.clusters import build_client
from workers.common.shard_key import ShardKey
from workers.rfs.naming import target_indices
from workers.rfs.status import DONE, ShardOutcome, snapshot_counts
from workers.rfs.worker import request_completion
from workers.snapshot.blobstore import open_blob_store
from workers.snapshot.repository import SnapshotRepository
from workflow_model import WorkflowConfig
from workflow_model.steps import SHARD_POOL, Step


def _previous(instance: dg.DagsterInstance, key: str) -> dict[str, Any]:
    records = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=shard_backfill.key, asset_partitions=[key]), limit=1).records
    return metadata_of(records[0]) if records else {}


_GATE = releasing(Step.SHARD_BACKFILL)


@dg.asset(name=Step.SHARD_BACKFILL.value, group_name=GROUP, partitions_def=SHARDS, deps=[GATE_ASSETS[_GATE.step]],
          pool=SHARD_POOL, backfill_policy=dg.BackfillPolicy.multi_run(1), automation_condition=gated(_GATE),
          kinds={"opensearch", "python"},
          description="One shard's documents read from the snapshot's Lucene files and bulk-indexed into the target.")
def shard_backfill(context: dg.AssetExecutionContext, source_snapshot: dict[str, Any], workflow: WorkflowResource,
                   shard_worker: ShardWorkerResource) -> dg.MaterializeResult:
    """Backfill the partition's shard, unless it was already done for the same snapshot."""
    require_approval(context.instance, _GATE)
    key = context.partition_key
    if key not in source_snapshot["shard_keys"]:
        raise dg.Failure(f"shard {key} is not in snapshot {source_snapshot['snapshot']}'s scope")
    config = workflow.load()
    config.require_secrets()
    shard = ShardKey.parse(key)
    skipped = _done_before(context, source_snapshot, workflow, config, shard)
    if skipped is not None:
        return skipped
    # Explicit, not left to the Pipes context: a backfill run carries a one-partition range rather than a key.
    request = worker_request(config, source_snapshot, workflow.dead_letter_dir(), shard.index, shard.shard,
                             worker_id=f"dagster-run:{context.run_id}:{key}")
    try:
        return shard_worker.run(context, config, request)
    except Exception as exc:
        attempt, retries = context.retry_number, config.backfill.retries
        if attempt >= retries or not retryable(exc):
            if attempt:
                raise dg.Failure(f"{key} failed after {attempt + 1} attempts: {exc}") from exc
            raise
        delay = config.backfill.retry_delay_s * 2 ** attempt
        context.log.warning(f"{key}: attempt {attempt + 1} of {retries + 1} failed ({exc}); retrying from its "
                            f"checkpoint in {delay:.0f}s")
        raise dg.RetryRequested(max_retries=retries, seconds_to_wait=delay) from exc


def _done_before(context: dg.AssetExecutionContext, source_snapshot: dict[str, Any], workflow: WorkflowResource,
                 config: WorkflowConfig, shard: ShardKey) -> dg.MaterializeResult | None:
    """The partition's result without starting a worker, when it was done before from this very snapshot (its
    UUID: names repeat) and is still done by the worker's own rule, read from the coordination index (the
    authority): a completion of this snapshot into the target indices there now (a recreated index is empty
    again). None: the worker decides."""
    key = context.partition_key
    before = _previous(context.instance, key)
    snapshot_uuid = source_snapshot.get("snapshot_uuid")
    if not (snapshot_uuid and before.get("snapshot_uuid") == snapshot_uuid and before.get("status") in DONE):
        return None
    done, reason = request_completion(worker_request(config, source_snapshot, workflow.dead_letter_dir(),
                                                     shard.index, shard.shard))
    if done is None:
        context.log.info(f"{key}: backfilled before, but {reason or 'its completion is no longer recorded'}; "
                         "running it again")
        return None
    context.log.info(f"{key}: already backfilled from {source_snapshot['snapshot']} (uuid {snapshot_uuid}); skipped")
    return dg.MaterializeResult(metadata={
        **{k: v for k, v in before.items() if k != "status"}, "documents": done.docs_written,
        "bytes": done.bytes_written, "target_uuids": dg.MetadataValue.json(done.target_uuids),
        "status": dg.MetadataValue.text(ShardOutcome.ALREADY_COMPLETED.value)})


# The worker's exit codes that another attempt cannot change: a configuration error, a lease another worker holds.
_FINAL_EXIT_CODES = frozenset({2, 4})


def retryable(exc: BaseException) -> bool:
    """Whether a failed shard run is worth another attempt: anything but a final exit code of the worker, or a pod
    the scheduler could not place (waited for already)."""
    if isinstance(exc, PodUnschedulable):
        return False
    match = re.search(r"failed with code (-?\d+)", str(exc))
    return not (match and int(match.group(1)) in _FINAL_EXIT_CODES)


def _parity_rows(expected: dict[str, int], actual: dict[str, int | None], names: dict[str, list[str]]) -> str:
    lines = ["| source index | target index | source | target | match |", "|---|---|---|---|---|"]
    for index, count in sorted(expected.items()):
        got = actual.get(index)
        lines.append(f"| {index} | {', '.join(names[index])} | {count} | {'—' if got is None else got} | "
                     f"{'yes' if got == count else 'NO'} |")
    return "\n".join(lines)


@dg.asset(name=Step.BACKFILL_PARITY.value, group_name=GROUP, deps=[shard_backfill], kinds={"opensearch"},
          # Latched: the last shard's update usually lands while its backfill still counts as in progress.
          automation_condition=(dg.AutomationCondition.any_deps_updated().allow(dg.AssetSelection.assets(shard_backfill))
                                .since_last_handled()
                                & ~dg.AutomationCondition.any_deps_missing()
                                & ~dg.AutomationCondition.any_deps_in_progress()
                                & ~dg.AutomationCondition.in_progress()),
          description="Per-index document counts on the target against the source's, once every shard is done.")
def backfill_parity(context: dg.AssetExecutionContext, source_snapshot: dict[str, Any],
                    workflow: WorkflowResource) -> dg.MaterializeResult[dict[str, Any]]:
    """Count each backfilled index on the target (after a refresh) and compare with the source's count."""
    config = workflow.load()
    client = build_client(config.target.connection())
    expected: dict[str, int] = source_snapshot["source_counts"]
    basis = "the source's _count before the snapshot"
    if config.replay.enabled:
        # Clients write through the capture proxy all along: the snapshot holds writes the count before it missed.
        # Compared instead with what the shards read from the snapshot (replayed writes come after this check).
        sent = snapshot_counts(client, config.backfill.coordination_index, source_snapshot["snapshot"])
        expected = {index: sent.get(index, 0) for index in expected}
        basis = "the documents the shards read from the snapshot (replay on: the source keeps changing)"
    repo = SnapshotRepository(open_blob_store(source_snapshot["uri"], s3_endpoint=source_snapshot.get("s3_endpoint"),
                                              s3_region=source_snapshot.get("s3_region")))
    # A split multi-type index's documents are spread over one target index per type: their sum is compared.
    names = target_indices(repo, source_snapshot["snapshot"], expected, config.metadata.rename_rules,
                           config.backfill_type_mode)
    actual: dict[str, int | None] = {}
    for index, target_names in names.items():
        present = [n for n in target_names if client.indices.exists(index=n)]
        if present:
            client.indices.refresh(index=",".join(present))
            actual[index] = int(client.count(index=",".join(present))["count"])
        else:
            actual[index] = None
    mismatched = sorted(i for i in expected if actual.get(i) != expected[i])
    context.log.info(f"parity: {len(expected) - len(mismatched)}/{len(expected)} indices match (against {basis})")
    value = {"expected": expected, "actual": actual, "target_names": names, "mismatched": mismatched,
             "snapshot": source_snapshot["snapshot"]}
    return dg.MaterializeResult(value=value, metadata={
        "indices": dg.MetadataValue.int(len(expected)),
        "compared_with": dg.MetadataValue.text(basis),
        "mismatched": dg.MetadataValue.json(mismatched),
        "target_documents": dg.MetadataValue.int(sum(v or 0 for v in actual.values())),
        "parity": dg.MetadataValue.md(_parity_rows(expected, actual, names)),
        "counts": dg.MetadataValue.json({i: {"source": expected[i], "target": actual.get(i), "target_index": names[i]}
                                         for i in sorted(expected)}),
        "snapshot": dg.MetadataValue.text(source_snapshot["snapshot"]),
    })


@dg.asset_check(asset=backfill_parity, blocking=True,
                description="Every backfilled index holds as many documents on the target as on the source.")
def doc_counts_match(backfill_parity: dict[str, Any]) -> dg.AssetCheckResult:
    """Pass when no index differs."""
    mismatched = backfill_parity["mismatched"]
    return dg.AssetCheckResult(
        passed=not mismatched, severity=dg.AssetCheckSeverity.ERROR,
        metadata={"mismatched": dg.MetadataValue.json(
            {i: {"source": backfill_parity["expected"][i], "target": backfill_parity["actual"].get(i)}
             for i in mismatched})})

"""The snapshot the migration reads: taken through the source's API or referenced; registers the shard partitions."""

# No "from __future__ import annotations": Dagster inspects the context annotation at definition time.
from typing import Any

import dagster as dg

from assets.clusters import source_cluster
from assets.partitions import GROUP, SHARDS
from resources.workflow import WorkflowResource
from workers.common.clusters import build_client
from workers.prepare.snapshot import RepositorySpec, prepare
from workflow_model.steps import Step


@dg.asset(name=Step.SOURCE_SNAPSHOT.value, group_name=GROUP, deps=[source_cluster], kinds={"elasticsearch", "snapshot"},
          description="The source snapshot (created or referenced), its shards in scope and per-index counts.")
def source_snapshot(context: dg.AssetExecutionContext,
                    workflow: WorkflowResource) -> dg.MaterializeResult[dict[str, Any]]:
    """Take or find the snapshot, then make the shard partitions match its shards in scope."""
    config = workflow.load()
    config.require_secrets()
    repo = config.snapshot.repository
    spec = RepositorySpec(repo.name, repo.uri, repo.s3.region, repo.s3.endpoint, repo.s3.role_arn,
                          send_region="region" in repo.s3.model_fields_set)
    last = [-1]

    def progress(done: int, total: int) -> None:
        if total and done != last[0]:
            last[0] = done
            context.log.info(f"snapshot: {done}/{total} shards done")

    prepared = prepare(build_client(config.source.connection()), spec, create=config.snapshot.create,
                       existing=config.snapshot.existing, index_expression=config.snapshot.indices,
                       include_global_state=config.snapshot.include_global_state,
                       backfill_allowlist=config.backfill.index_allowlist, progress=progress)
    keys = prepared.shard_keys
    instance = context.instance
    # Added before this materialization is committed, so no gate downstream can see a snapshot without its shards.
    instance.add_dynamic_partitions(SHARDS.name, keys)
    stale = [k for k in instance.get_dynamic_partitions(SHARDS.name) if k not in set(keys)]
    for key in stale:
        instance.delete_dynamic_partition(SHARDS.name, key)
    rows = "\n".join(f"| {index} | {shards} | {prepared.source_counts.get(index, '—')} |"
                     for index, shards in sorted(prepared.indices.items()))
    context.log.info(f"snapshot {prepared.snapshot}: {len(keys)} shards in scope over {len(prepared.indices)} indices")
    return dg.MaterializeResult(
        value=prepared.to_dict(),
        metadata={
            "snapshot": dg.MetadataValue.text(prepared.snapshot),
            "repository": dg.MetadataValue.text(f"{spec.name} at {spec.uri}"
                                                + (f", role {spec.s3_role_arn}" if spec.s3_role_arn else "")),
            "created": dg.MetadataValue.bool(prepared.created),
            # The repository the cleanup deregisters on the source (empty: it was there before the workflow).
            "registered_repository": dg.MetadataValue.text(spec.name if prepared.registered_repository else ""),
            "shards": dg.MetadataValue.int(len(keys)),
            "shard_keys": dg.MetadataValue.json(keys),
            "removed_partitions": dg.MetadataValue.json(stale),
            "documents_per_index": dg.MetadataValue.md("| index | shards | source documents |\n|---|---|---|\n" + rows),
            "source_documents": dg.MetadataValue.int(sum(prepared.source_counts.values())),
            "counts_taken": dg.MetadataValue.text(prepared.counts_taken),
            "duration_s": dg.MetadataValue.float(prepared.seconds),
            "config_fingerprint": dg.MetadataValue.text(config.snapshot_fingerprint()),
            # The snapshot's start on the source (ms since the epoch; null: unknown): where the replay starts.
            "start_time_ms": dg.MetadataValue.null() if prepared.start_time_ms is None
            else dg.MetadataValue.int(prepared.start_time_ms),
        },
    )

"""Observations of the live source and target clusters: health, version, per-index document counts."""

from __future__ import annotations

import dagster as dg

from resources.clusters import SearchClusterResource
from workers.common.cluster_info import ClusterObservation, observe
from workflow_model.steps import Step

GROUP = "migration"


def _metadata(obs: ClusterObservation, where: str) -> dict[str, dg.MetadataValue]:
    rows = "\n".join(f"| {name} | {count} |" for name, count in obs.indices.items())
    return {
        "endpoint": dg.MetadataValue.text(where),
        "engine": dg.MetadataValue.text(obs.engine),
        "version": dg.MetadataValue.text(obs.version),
        "health": dg.MetadataValue.text(obs.health),
        "index_count": dg.MetadataValue.int(len(obs.indices)),
        "total_documents": dg.MetadataValue.int(obs.total_docs),
        "documents_per_index": dg.MetadataValue.md("| index | documents |\n|---|---|\n" + rows),
    }


def _observe(cluster: SearchClusterResource) -> dg.ObserveResult:
    conn = cluster.connection()
    obs = observe(cluster.get_client(), conn.redacted())
    return dg.ObserveResult(data_version=dg.DataVersion(obs.fingerprint()), metadata=_metadata(obs, conn.redacted()))


@dg.observable_source_asset(name=Step.SOURCE_CLUSTER.value, group_name=GROUP,
                            description="The source cluster: health, version, counts.")
def source_cluster(source: SearchClusterResource) -> dg.ObserveResult:
    """Observe the source cluster."""
    return _observe(source)


@dg.observable_source_asset(name=Step.TARGET_CLUSTER.value, group_name=GROUP,
                            description="The target cluster: health, version, counts.")
def target_cluster(target: SearchClusterResource) -> dg.ObserveResult:
    """Observe the target cluster."""
    return _observe(target)

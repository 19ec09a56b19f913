"""The observable cluster assets against the real sandbox, in a real (temporary) Dagster instance."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import pytest

from assets.clusters import source_cluster, target_cluster
from jobs import observe_clusters
from migration_pipeline.deployments import SandboxClusterResource, resources_for
from migration_pipeline.sandbox import loader
from migration_pipeline.sandbox.state import SandboxState
from migration_pipeline.sandbox.workflow_file import sandbox_workflow
from resources import SearchClusterResource, WorkflowResource
from tests.conftest import unique
from workers.common.cluster_info import ClusterUnreachableError
from workers.common.errors import ConfigurationError

SNAPSHOT = "snapshot: {create: s, repository: {name: r, location: /tmp/r}}\n"


def _workflow(tmp_path: Path, text: str) -> WorkflowResource:
    path = tmp_path / "workflow.yaml"
    path.write_text(text)
    return WorkflowResource(config_path=str(path))


def test_observations_record_counts_of_the_configured_clusters(sandbox: SandboxState, tmp_path: Path) -> None:
    index = unique("obs")
    loader.load(sandbox.engines["source"].url, index, 123, profile_name="nested", shards=2, seed=2)
    workflow = _workflow(tmp_path, sandbox_workflow(sandbox))
    resources = {"source": SearchClusterResource(workflow=workflow, role="source"),
                 "target": SearchClusterResource(workflow=workflow, role="target")}
    with dg.instance_for_test() as instance:
        defs = dg.Definitions(assets=[source_cluster, target_cluster], jobs=[observe_clusters], resources=resources)
        assert defs.resolve_job_def(observe_clusters.name).execute_in_process(instance=instance).success
        source = instance.fetch_observations(source_cluster.key, limit=1).records[0]
        target = instance.fetch_observations(target_cluster.key, limit=1).records[0]
    assert source.asset_observation is not None and target.asset_observation is not None
    meta = source.asset_observation.metadata
    assert meta["engine"].value == "elasticsearch" and meta["version"].value == sandbox.engines["source"].version
    # Top-level documents: the nested items of the 123 orders are not counted.
    assert f"| {index} | 123 |" in str(meta["documents_per_index"].value)
    assert target.asset_observation.metadata["engine"].value == "opensearch"
    assert source.asset_observation.data_version


def test_only_the_sandbox_deployment_falls_back_to_the_sandbox(sandbox: SandboxState, tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    missing = WorkflowResource(config_path=str(tmp_path / "none.yaml"))
    with pytest.raises(dg.Failure, match=r"no workflow config at .*none\.yaml"):
        SearchClusterResource(workflow=missing, role="target").connection()
    fallback = SandboxClusterResource(workflow=missing, role="target")
    assert fallback.get_client().info()["version"]["distribution"] == "opensearch"
    # Each deployment's resources; kubernetes insists on the mounted config's path.
    assert type(resources_for("local")["source"]) is SearchClusterResource
    assert type(resources_for("sandbox")["source"]) is SandboxClusterResource
    monkeypatch.delenv("MIGRATION_WORKFLOW_CONFIG", raising=False)
    with pytest.raises(ConfigurationError, match="MIGRATION_WORKFLOW_CONFIG"):
        resources_for("kubernetes")
    monkeypatch.setenv("MIGRATION_WORKFLOW_CONFIG", str(tmp_path / "mounted.yaml"))
    kube = resources_for("kubernetes")["workflow"]
    assert isinstance(kube, WorkflowResource) and kube.path() == tmp_path / "mounted.yaml"
    with pytest.raises(ConfigurationError, match=r"unknown deployment 'laptop'"):
        resources_for("laptop")


def test_unreachable_cluster_is_a_clear_error(tmp_path: Path) -> None:
    from assets.clusters import _observe

    workflow = _workflow(tmp_path, "version: 1\nsource: {endpoint: 'http://127.0.0.1:1', timeout_s: 2}\n"
                                   "target: {endpoint: 'http://127.0.0.1:1'}\n" + SNAPSHOT)
    with pytest.raises(ClusterUnreachableError, match=r"cannot reach http://127.0.0.1:1"):
        _observe(SearchClusterResource(workflow=workflow, role="source"))


def test_basic_auth_missing_env_var_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NO_SUCH_PASSWORD_VAR", raising=False)
    workflow = _workflow(tmp_path, "version: 1\nsource: {endpoint: 'http://127.0.0.1:1'}\n" + SNAPSHOT +
                                   "target: {endpoint: 'https://127.0.0.1:9200', auth: {kind: basic, username: admin, "
                                   "password_env: NO_SUCH_PASSWORD_VAR}}\n")
    with pytest.raises(ConfigurationError, match="NO_SUCH_PASSWORD_VAR"):
        SearchClusterResource(workflow=workflow, role="target").get_client()

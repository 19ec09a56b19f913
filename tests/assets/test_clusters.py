"""The observable cluster assets against the real sandbox, in a real (temporary) Dagster instance."""

from __future__ import annotations

import dagster as dg
import pytest

from migration_pipeline.definitions import defs
from migration_pipeline.sandbox import loader
from migration_pipeline.sandbox.state import SandboxState
from resources.clusters import BasicAuthConfig, SearchClusterResource
from tests.conftest import unique
from workers.common.cluster_info import ClusterUnreachableError
from workers.common.errors import ConfigurationError


def test_observe_job_records_counts(sandbox: SandboxState) -> None:
    index = unique("obs")
    loader.load(sandbox.engines["source"].url, index, 123, profile_name="nested", shards=2, seed=2)
    with dg.instance_for_test() as instance:
        result = defs.resolve_job_def("observe_clusters").execute_in_process(instance=instance)
        assert result.success
        source = instance.fetch_observations(dg.AssetKey("source_cluster"), limit=1).records[0]
        target = instance.fetch_observations(dg.AssetKey("target_cluster"), limit=1).records[0]
    assert source.asset_observation is not None and target.asset_observation is not None
    meta = source.asset_observation.metadata
    assert meta["engine"].value == "elasticsearch" and meta["version"].value == "7.10.2"
    # Top-level documents: the nested items of the 123 orders are not counted.
    assert f"| {index} | 123 |" in str(meta["documents_per_index"].value)
    assert target.asset_observation.metadata["engine"].value == "opensearch"
    assert source.asset_observation.data_version


def test_resource_endpoint_overrides_sandbox(sandbox: SandboxState) -> None:
    url = sandbox.engines["target"].url
    resource = SearchClusterResource(endpoint=url, role="source")
    assert resource.get_client().info()["version"]["distribution"] == "opensearch"


def test_unreachable_cluster_is_a_clear_error() -> None:
    from assets.clusters import _observe

    with pytest.raises(ClusterUnreachableError, match=r"cannot reach http://127.0.0.1:1"):
        _observe(SearchClusterResource(endpoint="http://127.0.0.1:1", timeout_s=2))


def test_basic_auth_missing_env_var_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NO_SUCH_PASSWORD_VAR", raising=False)
    resource = SearchClusterResource(endpoint="https://127.0.0.1:9200",
                                     auth=BasicAuthConfig(username="admin", password_env="NO_SUCH_PASSWORD_VAR"))
    with pytest.raises(ConfigurationError, match="NO_SUCH_PASSWORD_VAR"):
        resource.get_client()

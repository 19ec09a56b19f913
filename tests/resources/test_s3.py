"""The ``s3`` resource: one dagster-aws S3Resource in every deployment's Definitions, configured from the workflow
config (or, in the sandbox deployment without one, the sandbox's moto server), used against the real moto server."""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from pathlib import Path

import boto3
import dagster as dg
import pytest
from dagster_aws.s3 import S3Resource

from migration_pipeline.deployments import DEPLOYMENT_ENV, SandboxS3Resource, resources_for
from migration_pipeline.sandbox.paths import NAME_ENV
from migration_pipeline.sandbox.state import SandboxState
from migration_pipeline.sandbox.workflow_file import sandbox_workflow
from resources import MigrationS3Resource, WorkflowResource, s3_client
from tests.conftest import unique
from workers.common.errors import ConfigurationError
from workflow_model.config import S3Model
from workflow_model.store import CONFIG_ENV


@pytest.fixture
def no_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No workflow config is loaded (the path the resources read does not exist)."""
    path = tmp_path / "no-workflow.yaml"
    monkeypatch.setenv(CONFIG_ENV, str(path))
    return path


@pytest.fixture
def bucket(sandbox: SandboxState, aws_env: None) -> Iterator[str]:
    """A bucket on the sandbox's moto server holding one object, made with a plain boto3 client."""
    assert sandbox.s3 is not None
    name = unique("s3res")
    plain = boto3.client("s3", endpoint_url=sandbox.s3.endpoint, region_name="us-east-1")
    plain.create_bucket(Bucket=name)
    plain.put_object(Bucket=name, Key="dead-letters/one.json", Body=b"{}")
    yield name


def _s3(deployment: str) -> MigrationS3Resource:
    """The ``s3`` resource ``deployment`` binds."""
    resource = resources_for(deployment)["s3"]
    assert isinstance(resource, MigrationS3Resource)
    return resource


def _keys(client: object, bucket: str) -> list[str]:
    listing = client.list_objects_v2(Bucket=bucket)  # type: ignore[attr-defined]
    return [item["Key"] for item in listing.get("Contents", [])]


@pytest.mark.parametrize("deployment", ["local", "sandbox", "kubernetes"])
def test_every_deployment_binds_one_s3_resource(deployment: str, no_config: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    import migration_pipeline.definitions as definitions

    monkeypatch.setenv(DEPLOYMENT_ENV, deployment)
    try:
        defs = importlib.reload(definitions).defs
        dg.Definitions.validate_loadable(defs)
        s3, workflow = defs.resources["s3"], defs.resources["workflow"]
        assert isinstance(s3, S3Resource) and isinstance(s3, MigrationS3Resource)
        assert (type(s3) is SandboxS3Resource) == (deployment == "sandbox")
        # Configured once: the S3 resource reads the same workflow config as every other resource.
        assert isinstance(workflow, WorkflowResource) and s3.workflow.path() == workflow.path() == no_config
    finally:
        monkeypatch.undo()
        importlib.reload(definitions)


def test_sandbox_deployment_lists_a_bucket_on_the_sandbox_moto_server(sandbox: SandboxState, bucket: str,
                                                                       no_config: Path) -> None:
    s3 = _s3("sandbox")
    assert isinstance(s3, SandboxS3Resource) and sandbox.s3 is not None
    assert s3.client_settings()["endpoint_url"] == sandbox.s3.endpoint
    assert _keys(s3.get_client(), bucket) == ["dead-letters/one.json"]

    # As an asset gets it: bound by the deployment, turned into a client by the helper.
    @dg.asset
    def listed(s3: S3Resource) -> dg.MaterializeResult:
        return dg.MaterializeResult(metadata={"keys": ",".join(_keys(s3_client(s3), bucket))})

    with dg.instance_for_test() as instance:
        result = dg.materialize([listed], resources={"s3": s3}, instance=instance)
        assert result.success
        materialization = result.asset_materializations_for_node("listed")[0]
        assert materialization.metadata["keys"].value == "dead-letters/one.json"


def test_sandbox_credentials_are_used_without_any_in_the_environment(sandbox: SandboxState, bucket: str,
                                                                     no_config: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")
    assert _keys(s3_client(_s3("sandbox")), bucket) == ["dead-letters/one.json"]


def test_local_deployment_takes_endpoint_and_region_from_the_workflow_config(sandbox: SandboxState, bucket: str,
                                                                             tmp_path: Path,
                                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    assert sandbox.s3 is not None
    path = tmp_path / "workflow.yaml"
    path.write_text(sandbox_workflow(sandbox, location=f"s3://{bucket}/repo"))
    monkeypatch.setenv(CONFIG_ENV, str(path))
    s3 = _s3("local")
    assert type(s3) is MigrationS3Resource
    settings = s3.client_settings()
    assert (settings["endpoint_url"], settings["region_name"]) == (sandbox.s3.endpoint, "us-east-1")
    assert _keys(s3_client(s3), bucket) == ["dead-letters/one.json"]


def test_another_s3_section_keeps_the_credentials_and_changes_endpoint_and_region(no_config: Path) -> None:
    s3 = MigrationS3Resource(workflow=WorkflowResource(), aws_access_key_id="k", aws_secret_access_key="s")
    client = s3_client(s3, S3Model(endpoint="http://127.0.0.1:1", region="eu-west-3"))
    assert client.meta.endpoint_url == "http://127.0.0.1:1" and client.meta.region_name == "eu-west-3"
    assert client._request_signer._credentials.access_key == "k"
    # A plain dagster-aws resource works with the helper too.
    plain = s3_client(S3Resource(region_name="us-west-2"), S3Model(endpoint="http://127.0.0.1:2"))
    assert plain.meta.endpoint_url == "http://127.0.0.1:2" and plain.meta.region_name == "us-east-1"


def test_sandbox_deployment_without_config_or_sandbox_s3_names_both_ways_out(no_config: Path,
                                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(NAME_ENV, unique("no-sandbox"))
    with pytest.raises(ConfigurationError, match=r"no workflow config is loaded .*migration sandbox up --s3"):
        s3_client(_s3("sandbox"))

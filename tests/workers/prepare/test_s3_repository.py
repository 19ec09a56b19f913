"""The S3 repository the snapshot phase registers: its settings per source engine and release, the source's
refusals, and (against a real OpenSearch with repository-s3 and moto) a snapshot taken into S3 and read back."""

from __future__ import annotations

from typing import Any

import boto3
import pytest
from opensearchpy import OpenSearch
from opensearchpy.exceptions import ConnectionError, TransportError

from migration_pipeline.sandbox import loader, manager
from migration_pipeline.sandbox import s3 as sandbox_s3
from migration_pipeline.sandbox.catalog import RELEASES
from tests.conftest import unique
from workers.common.cluster_info import ServerVersion
from workers.documents.reader import open_shard
from workers.prepare.snapshot import RepositorySpec, prepare, register_repository, s3_repository_settings
from workers.snapshot.blobstore import open_blob_store
from workers.snapshot.create import SnapshotError
from workers.snapshot.repository import SnapshotRepository

ROLE = "arn:aws:iam::123456789012:role/MigrationSnapshots"
SPEC = RepositorySpec("repo", "s3://snaps/migrations/one", "eu-west-1", "http://127.0.0.1:9000", ROLE)
BASE = {"bucket": "snaps", "base_path": "migrations/one"}
ENDPOINT = {"endpoint": "127.0.0.1:9000", "protocol": "http", "path_style_access": "true"}


@pytest.mark.parametrize(("engine", "number", "sent", "left_out"), [
    # OpenSearch reads endpoint/protocol/path style/region on the repository; role_arn is Amazon OpenSearch Service's.
    ("opensearch", "1.3.20", {"region", *ENDPOINT, "role_arn"}, set()),
    ("opensearch", "2.19.6", {"region", *ENDPOINT, "role_arn"}, set()),
    ("opensearch", "3.8.0", {"region", *ENDPOINT, "role_arn"}, set()),
    # Elasticsearch 5.x: the old repository-level settings.
    ("elasticsearch", "5.6.16", {"region", *ENDPOINT, "role_arn"}, set()),
    # 6.x: only node (client) settings; with a role ARN (an Amazon domain) the region goes too.
    ("elasticsearch", "6.8.23", {"region", "role_arn"}, {"endpoint", "protocol", "path_style_access"}),
    # 7.0-7.3 override endpoint/protocol, always use path style; no region before 7.7 (but for an Amazon domain).
    ("elasticsearch", "7.3.2", {"region", "endpoint", "protocol", "role_arn"}, set()),
    ("elasticsearch", "7.10.2", {"region", *ENDPOINT, "role_arn"}, set()),
    # After 7.10 no Amazon OpenSearch Service domain: no role ARN.
    ("elasticsearch", "7.17.29", {"region", *ENDPOINT}, {"role_arn"}),
    ("elasticsearch", "8.19.21", {"region", *ENDPOINT}, {"role_arn"}),
    ("elasticsearch", "9.2.0", {"region", *ENDPOINT}, {"role_arn"}),
])
def test_settings_sent_per_engine_and_release(engine: str, number: str, sent: set[str], left_out: set[str]) -> None:
    built = s3_repository_settings(SPEC, ServerVersion(engine, number))
    assert set(built.settings) == {*BASE, *sent}
    assert {k: v for k, v in built.settings.items() if k in BASE} == BASE
    assert set(built.left_out) == left_out
    assert all(reason for reason in built.left_out.values())
    full = {**BASE, "region": "eu-west-1", **ENDPOINT, "role_arn": ROLE}
    assert all(built.settings[k] == full[k] for k in built.settings)


def test_without_a_role_arn_older_elasticsearch_gets_no_region() -> None:
    spec = RepositorySpec("repo", "s3://snaps/p", "eu-west-1", None, None)
    built = s3_repository_settings(spec, ServerVersion("elasticsearch", "7.6.2"))
    assert built.settings == {"bucket": "snaps", "base_path": "p"}
    assert set(built.left_out) == {"region"} and "7.6.2" in built.left_out["region"]
    assert s3_repository_settings(spec, ServerVersion("elasticsearch", "7.7.0")).settings["region"] == "eu-west-1"


def test_endpoint_forms_and_an_empty_prefix() -> None:
    source = ServerVersion("opensearch", "2.19.6")
    aws = s3_repository_settings(RepositorySpec("r", "s3://b", "eu-west-1", "https://s3.eu-west-1.amazonaws.com/"),
                                 source)
    # No base_path for a bucket's root; AWS endpoints keep virtual-hosted access.
    assert aws.settings == {"bucket": "b", "region": "eu-west-1", "endpoint": "s3.eu-west-1.amazonaws.com",
                            "protocol": "https"}
    bare = s3_repository_settings(RepositorySpec("r", "s3://b/x/", None, "minio.internal:9000"), source)
    assert bare.settings == {"bucket": "b", "base_path": "x", "endpoint": "minio.internal:9000",
                             "path_style_access": "true"}


class _Snapshots:
    def __init__(self, refusal: TransportError | None) -> None:
        self.refusal = refusal
        self.bodies: list[tuple[str, dict[str, Any]]] = []

    def create_repository(self, *, repository: str, body: dict[str, Any]) -> None:
        self.bodies.append((repository, body))
        if self.refusal is not None:
            raise self.refusal


class _Client:
    """Just what register_repository calls: GET / and the snapshot API."""

    def __init__(self, number: str, distribution: str | None = None, refusal: TransportError | None = None) -> None:
        self.version = {"number": number, **({"distribution": distribution} if distribution else {})}
        self.snapshot = _Snapshots(refusal)

    def info(self) -> dict[str, Any]:
        return {"version": self.version}


def _refusal(reason: str, caused_by: str | None = None, status: int = 500) -> TransportError:
    error: dict[str, Any] = {"type": "repository_exception", "reason": reason}
    if caused_by:
        error["caused_by"] = {"type": "illegal_argument_exception", "reason": caused_by}
    return TransportError(status, "repository_exception", {"error": error, "status": status})


def test_register_asks_the_source_its_release() -> None:
    client = _Client("8.19.21")
    register_repository(client, SPEC)  # type: ignore[arg-type]
    [(name, body)] = client.snapshot.bodies
    assert name == "repo" and body["type"] == "s3"
    assert body["settings"] == {**BASE, "region": "eu-west-1", **ENDPOINT}
    opensearch = _Client("2.19.6", "opensearch")
    register_repository(opensearch, SPEC)  # type: ignore[arg-type]
    assert opensearch.snapshot.bodies[0][1]["settings"]["role_arn"] == ROLE


def test_an_unreachable_source_is_named_before_anything_is_sent() -> None:
    class Down(_Client):
        def info(self) -> dict[str, Any]:
            raise ConnectionError("N/A", "connection refused", OSError("refused"))

    down = Down("2.19.6")
    with pytest.raises(SnapshotError, match="cannot register S3 repository 'repo': the source's version"):
        register_repository(down, SPEC)  # type: ignore[arg-type]
    assert down.snapshot.bodies == []


def test_a_refusal_names_the_repository_the_setting_at_fault_and_what_to_do() -> None:
    refused = _Client("3.8.0", "opensearch", _refusal(
        "[repo] failed to create repository",
        "Failed to parse value [eu-west-9x] for setting [s3.client.placeholder.region]"))
    with pytest.raises(SnapshotError) as err:
        register_repository(refused, SPEC)  # type: ignore[arg-type]
    message = str(err.value)
    assert "'repo' at s3://snaps/migrations/one" in message
    assert "failed to create repository; caused by illegal_argument_exception: Failed to parse value" in message
    assert "check snapshot.repository.s3.region (sent as the repository setting region='eu-west-1')" in message
    assert f'"role_arn": "{ROLE}"' in message  # what was sent, role ARN included (not a secret)
    # An SDK error that names no setting but points at one.
    unnamed = _Client("2.19.6", "opensearch", _refusal(
        "[repo] path [migrations/one] is not accessible on cluster-manager node",
        "SdkClientException: Unable to load region from any of the providers in the chain"))
    with pytest.raises(SnapshotError, match=r"check snapshot.repository.s3.region \(sent as"):
        register_repository(unnamed, SPEC)  # type: ignore[arg-type]


def test_refusals_without_a_setting_say_what_to_do() -> None:
    no_plugin = _Client("7.10.2", refusal=_refusal("[repo] repository type [s3] does not exist", status=400))
    with pytest.raises(SnapshotError, match="install the repository-s3 plugin on every source node"):
        register_repository(no_plugin, SPEC)  # type: ignore[arg-type]
    role = _Client("2.19.6", "opensearch", _refusal(
        "User: arn:aws:iam::123456789012:user/me is not authorized to perform: iam:PassRole", status=403))
    with pytest.raises(SnapshotError, match="allowed iam:PassRole on arn:aws:iam::123456789012:role/Migration"):
        register_repository(role, SPEC)  # type: ignore[arg-type]
    newer = _Client("8.19.21", refusal=_refusal("[repo] path [migrations/one] is not accessible on master node"))
    with pytest.raises(SnapshotError) as err:
        register_repository(newer, SPEC)  # type: ignore[arg-type]
    assert "needs S3 credentials" in str(err.value)
    assert "not sent: role_arn (only Amazon OpenSearch Service reads role_arn" in str(err.value)


# The sandbox's releases that ship repository-s3 (OpenSearch publishes it on Maven Central from 3.1 on).
S3_SOURCE = next(r for r in RELEASES if any(m.name == "repository-s3" for m in r.modules))
REGION = "eu-west-1"


@pytest.mark.usefixtures("aws_env")
def test_prepare_takes_the_snapshot_into_s3_with_region_endpoint_and_role() -> None:
    name = unique("s3-prepare")
    try:
        state = manager.up(manager.UpRequest(source=S3_SOURCE.spec, target=None, s3=True), name=name)
        node, server = state.engines["source"], state.s3
        assert server is not None
        s3 = boto3.client("s3", endpoint_url=server.endpoint, region_name=REGION,
                          aws_access_key_id=sandbox_s3.ACCESS_KEY, aws_secret_access_key=sandbox_s3.SECRET_KEY)
        bucket = unique("snaps")
        s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": REGION})
        client = OpenSearch(hosts=[node.url], timeout=60)
        index = unique("s3p")
        loader.load(node.url, index, 300, profile_name="products", shards=2, seed=5)
        spec = RepositorySpec("s3prep", f"s3://{bucket}/runs/one", REGION, server.endpoint, ROLE)

        prepared = prepare(client, spec, create="snap-{timestamp}", existing=None, index_expression=[index],
                           include_global_state=False, backfill_allowlist=[])
        assert prepared.created and prepared.indices == {index: 2} and prepared.source_counts == {index: 300}

        keys = [o["Key"] for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket)
                for o in page.get("Contents", [])]
        assert keys and all(k.startswith("runs/one/") for k in keys), keys
        assert "runs/one/index.latest" in keys and any(k.startswith("runs/one/indices/") for k in keys)

        # The source reports the settings as sent (the role ARN is kept, though OpenSearch itself does not read it).
        reported = client.snapshot.get_repository(repository="s3prep")["s3prep"]
        assert reported["type"] == "s3"
        assert reported["settings"] == {"bucket": bucket, "base_path": "runs/one", "region": REGION,
                                        "endpoint": server.endpoint.split("://")[1], "protocol": "http",
                                        "path_style_access": "true", "role_arn": ROLE}

        # The project's own reader finds the snapshot in S3 and reads every document of it.
        repository = SnapshotRepository(open_blob_store(spec.uri, s3_endpoint=server.endpoint, s3_region=REGION))
        assert [s.name for s in repository.snapshots()] == [prepared.snapshot]
        readers = [open_shard(repository, prepared.snapshot, index, shard) for shard in range(2)]
        assert sum(1 for reader in readers for _doc in reader.documents()) == 300

        # A setting the source rejects is named in the refusal (an endpoint with a scheme it has no protocol for).
        bad = RepositorySpec("s3bad", f"s3://{bucket}/runs/bad", REGION, "ftp://" + server.endpoint.split("://")[1])
        with pytest.raises(SnapshotError) as err:
            register_repository(client, bad)
        assert "source refused S3 repository 's3bad' at s3://" in str(err.value), err.value
        assert "check snapshot.repository.s3.endpoint (sent as the repository setting protocol='ftp')" in str(err.value)
    finally:
        manager.down(name)

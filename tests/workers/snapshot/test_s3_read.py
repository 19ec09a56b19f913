"""The same repository read through S3 (a real moto server), uploaded from the filesystem repository."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from migration_pipeline.sandbox import s3 as sandbox_s3
from migration_pipeline.sandbox.state import SandboxState
from tests.conftest import FIXTURE_SNAPSHOTS, unique
from workers.documents.reader import read_snapshot_documents
from workers.snapshot.blobstore import open_blob_store, s3_client, upload_directory

FIXTURES = FIXTURE_SNAPSHOTS


@pytest.mark.parametrize(("name", "snapshot"), [("ES_5_6_Updates_Deletes", "rfs_snapshot"),
                                                ("ES_6_8_Single", "global_state_snapshot"),
                                                ("ES_7_10_Single", "global_state_snapshot")])
def test_s3_read_equals_filesystem_read(sandbox: SandboxState, aws_env: None, name: str, snapshot: str) -> None:
    assert sandbox.s3 is not None
    endpoint = sandbox.s3.endpoint
    client = s3_client(endpoint=endpoint, region=sandbox_s3.REGION)
    bucket = unique("repos")
    client.create_bucket(Bucket=bucket)
    upload_directory(FIXTURES / name, client, bucket, f"snapshots/{name}")
    store = open_blob_store(f"s3://{bucket}/snapshots/{name}", s3_endpoint=endpoint, s3_region=sandbox_s3.REGION)
    from_s3 = list(read_snapshot_documents(store, snapshot))
    from_fs = list(read_snapshot_documents(open_blob_store(str(FIXTURES / name)), snapshot))
    assert from_s3 == from_fs and from_s3

    proc = subprocess.run(
        [sys.executable, "-m", "migration_pipeline.cli.console", "snapshot", "read", "--repo",
         f"s3://{bucket}/snapshots/{name}", "--snapshot", snapshot, "--s3-endpoint", endpoint,
         "--s3-region", sandbox_s3.REGION],
        capture_output=True, text=True, timeout=120, env=dict(os.environ),
    )
    assert proc.returncode == 0, proc.stderr
    assert sorted(json.loads(line)["_id"] for line in proc.stdout.splitlines()) == sorted(d.id for d in from_fs)

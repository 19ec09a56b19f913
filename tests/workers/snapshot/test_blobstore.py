"""Blob stores: the real ES 7.10 sample repository on disk, and the same repository uploaded to a real moto S3."""

from __future__ import annotations

import os
import shutil
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from migration_pipeline.sandbox.s3 import ACCESS_KEY, REGION, SECRET_KEY
from migration_pipeline.sandbox.state import SandboxState
from tests.conftest import FIXTURE_SNAPSHOTS, unique
from workers.common.errors import ConfigurationError, MigrationError
from workers.snapshot.blobstore import (
    BlobNotFoundError,
    BlobRangeError,
    BlobStore,
    FileSystemBlobStore,
    RepositoryNotFoundError,
    S3BlobStore,
    join_key,
    open_blob_store,
    s3_client,
    upload_directory,
)

FIXTURE = FIXTURE_SNAPSHOTS / "ES_7_10_Single"  # read-only: copy to tmp_path to alter
SNAPSHOT_UUID = "7_1RHMshSc6c0cuzX1NCDg"


def fixture_files() -> dict[str, Path]:
    """Every file of the sample repository by its "/" key, found independently of the code under test."""
    files = {}
    for dirpath, _dirs, names in os.walk(FIXTURE):
        for name in names:
            path = Path(dirpath) / name
            files[path.relative_to(FIXTURE).as_posix()] = path
    return files


@pytest.fixture
def fs_store() -> FileSystemBlobStore:
    return FileSystemBlobStore(FIXTURE)


# --- filesystem ---------------------------------------------------------------------------------------------


def test_fs_lists_the_repository_sorted(fs_store: FileSystemBlobStore) -> None:
    keys = fs_store.list()
    assert keys == sorted(fixture_files())
    root_keys = [key for key in keys if "/" not in key]
    assert root_keys == ["index-1", "index.latest", f"meta-{SNAPSHOT_UUID}.dat", f"snap-{SNAPSHOT_UUID}.dat"]
    assert any(key.startswith("indices/") and key.split("/")[-1].startswith("__") for key in keys)
    assert all("\\" not in key and not key.startswith("/") for key in keys)


def test_fs_list_by_prefix(fs_store: FileSystemBlobStore) -> None:
    keys = fs_store.list()
    for prefix in ["indices/", "indices/TKzEIy9ASTq-FuWhogYPHw/0/", "indices/TKzEIy9ASTq-FuWhogYPHw/0/__", "snap-",
                   "index", "ind", "indices/TKz"]:
        assert fs_store.list(prefix) == [key for key in keys if key.startswith(prefix)], prefix
    # A plain string prefix, as on S3: "ind" matches root blobs and keys under "indices/" alike.
    assert fs_store.list("ind")[:2] == ["index-1", "index.latest"]
    assert any(key.startswith("indices/") for key in fs_store.list("ind"))
    assert fs_store.list("nothing-here/") == []
    assert fs_store.list("../") == [] and fs_store.list("indices/../") == []


def test_fs_read_and_size(fs_store: FileSystemBlobStore) -> None:
    latest = fs_store.read("index.latest")
    assert len(latest) == 8 and struct.unpack(">q", latest) == (1,)
    assert fs_store.exists("index-1") and fs_store.exists(f"indices/eQUBLj-GTUWh6FHH9ectQA/0/snap-{SNAPSHOT_UUID}.dat")
    for key, path in fixture_files().items():
        assert fs_store.size(key) == path.stat().st_size
        assert fs_store.read(key) == path.read_bytes()


def test_fs_read_range_is_a_slice(fs_store: FileSystemBlobStore) -> None:
    key = f"meta-{SNAPSHOT_UUID}.dat"
    whole = fs_store.read(key)
    assert len(whole) > 30_000
    for offset, length in [(0, 1), (0, len(whole)), (5, 100), (len(whole) - 16, 16), (12_345, 7_000),
                           (len(whole), 0), (3, 0)]:
        assert fs_store.read_range(key, offset, length) == whole[offset:offset + length]


def test_fs_missing_blob_names_key_and_store(fs_store: FileSystemBlobStore) -> None:
    for action in (fs_store.read, fs_store.size, lambda key: fs_store.read_range(key, 0, 1)):
        with pytest.raises(BlobNotFoundError, match=r"indices/nope/0/__missing") as info:
            action("indices/nope/0/__missing")
        assert fs_store.uri in str(info.value)
    assert not fs_store.exists("indices/nope/0/__missing")
    # A directory is not a blob, and a file is not a directory.
    assert not fs_store.exists("indices")
    with pytest.raises(BlobNotFoundError, match="indices"):
        fs_store.read("indices")
    with pytest.raises(BlobNotFoundError, match="indices"):
        fs_store.size("indices/TKzEIy9ASTq-FuWhogYPHw")
    with pytest.raises(BlobNotFoundError, match=r"index-1/x"):
        fs_store.read("index-1/x")
    assert issubclass(BlobNotFoundError, MigrationError) and issubclass(RepositoryNotFoundError, MigrationError)


def test_fs_keys_cannot_leave_the_repository(fs_store: FileSystemBlobStore) -> None:
    for key in ["../ES_7_10_Single/index-1", "/etc/hostname", "indices/../index-1", "", "./index-1", "a//b"]:
        with pytest.raises(BlobNotFoundError, match="not a blob key"):
            fs_store.read(key)


def test_fs_range_past_the_end(fs_store: FileSystemBlobStore) -> None:
    with pytest.raises(BlobRangeError, match=r"index\.latest.*8 bytes at offset 4.*only 8 bytes"):
        fs_store.read_range("index.latest", 4, 8)
    with pytest.raises(BlobRangeError, match=r"index\.latest.*offset 9.*only 8 bytes"):
        fs_store.read_range("index.latest", 9, 0)
    with pytest.raises(BlobRangeError, match=r"offset 100.*only 8 bytes"):
        fs_store.read_range("index.latest", 100, 1)
    with pytest.raises(ValueError, match="offset"):
        fs_store.read_range("index.latest", -1, 1)


def test_fs_missing_root_and_empty_root(tmp_path: Path) -> None:
    with pytest.raises(RepositoryNotFoundError, match="no-such-repo"):
        FileSystemBlobStore(tmp_path / "no-such-repo")
    with pytest.raises(RepositoryNotFoundError, match="no-such-repo"):
        open_blob_store(str(tmp_path / "no-such-repo"))
    empty = tmp_path / "empty"
    empty.mkdir()
    assert FileSystemBlobStore(empty).list() == []  # a registered repository with no snapshot yet


def test_fs_sees_a_copy_change(tmp_path: Path) -> None:
    copy = tmp_path / "repo"
    shutil.copytree(FIXTURE, copy)
    store = FileSystemBlobStore(copy)
    (copy / "index-2").write_bytes(b"{}")
    (copy / "index.latest").write_bytes(struct.pack(">q", 2))
    assert store.list("index-") == ["index-1", "index-2"]
    assert store.read_range("index.latest", 7, 1) == b"\x02"
    (copy / "index-1").unlink()
    with pytest.raises(BlobNotFoundError, match="index-1"):
        store.read_range("index-1", 0, 1)


def test_open_blob_store_filesystem_forms(tmp_path: Path) -> None:
    for uri in [str(FIXTURE), FIXTURE.as_uri(), f"file://localhost{FIXTURE}"]:
        store = open_blob_store(uri)
        assert isinstance(store, FileSystemBlobStore) and store.uri == FIXTURE.as_uri()
        assert store.list() == sorted(fixture_files())
    spaced = tmp_path / "with space"
    spaced.mkdir()
    (spaced / "index.latest").write_bytes(b"\0" * 8)
    assert open_blob_store(spaced.as_uri()).list() == ["index.latest"]


def test_open_blob_store_rejects_other_forms() -> None:
    for uri in ["ftp://x", "relative/repo", "file://otherhost/repo", "s3:///prefix-without-bucket", "gs://b/p"]:
        with pytest.raises(ConfigurationError) as info:
            open_blob_store(uri)
        assert uri in str(info.value) and "s3://bucket" in str(info.value) and "file:///" in str(info.value)


def test_join_key() -> None:
    assert join_key("", "index-1") == "index-1"
    assert join_key("repo", "index-1") == "repo/index-1"
    assert join_key("/a//b/", "indices/x/0/__y") == "a/b/indices/x/0/__y"


# --- S3 (a real moto server from the sandbox) ---------------------------------------------------------------


@dataclass
class S3Repo:
    """The sample repository uploaded to moto, with the endpoint and a client to look behind the store."""

    endpoint: str
    bucket: str
    prefix: str
    client: Any
    uploaded: int

    @property
    def uri(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}"

    def open(self, uri: str | None = None) -> BlobStore:
        return open_blob_store(uri or self.uri, s3_endpoint=self.endpoint, s3_region=REGION)


@pytest.fixture
def s3_env(sandbox: SandboxState, monkeypatch: pytest.MonkeyPatch) -> str:
    """moto's endpoint, with the sandbox credentials in the environment (the usual AWS chain picks them up)."""
    assert sandbox.s3 is not None
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", ACCESS_KEY)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    # A named profile would take precedence over the environment credentials.
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
    return sandbox.s3.endpoint


@pytest.fixture
def s3_repo(s3_env: str) -> Iterator[S3Repo]:
    client = s3_client(endpoint=s3_env, region=REGION)
    bucket = unique("blobstore")
    client.create_bucket(Bucket=bucket)
    prefix = unique("repos/es710")
    uploaded = upload_directory(FIXTURE, client, bucket, prefix)
    yield S3Repo(s3_env, bucket, prefix, client, uploaded)


def raw_keys(client: Any, bucket: str) -> list[str]:
    """Every object key in the bucket, straight from S3."""
    keys: list[str] = []
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        keys.extend(item["Key"] for item in page.get("Contents", []))
    return sorted(keys)


def test_upload_directory_puts_every_file_under_the_prefix(s3_repo: S3Repo) -> None:
    files = fixture_files()
    assert s3_repo.uploaded == len(files)
    assert raw_keys(s3_repo.client, s3_repo.bucket) == sorted(f"{s3_repo.prefix}/{key}" for key in files)


def test_s3_store_matches_the_filesystem_store(s3_repo: S3Repo, fs_store: FileSystemBlobStore) -> None:
    store = s3_repo.open()
    assert isinstance(store, S3BlobStore) and store.uri == s3_repo.uri
    assert store.list() == fs_store.list()
    for prefix in ["indices/", "index", "ind", "indices/TKzEIy9ASTq-FuWhogYPHw/0/__", "snap-", "nothing/"]:
        assert store.list(prefix) == fs_store.list(prefix), prefix
    latest = store.read("index.latest")
    assert len(latest) == 8 and struct.unpack(">q", latest) == (1,)
    for key in fs_store.list():
        whole = fs_store.read(key)
        assert store.size(key) == fs_store.size(key) == len(whole)
        assert store.read(key) == whole
        assert store.exists(key)
        for offset, length in [(0, 1), (0, len(whole)), (len(whole) // 3, len(whole) // 2), (len(whole) - 1, 1),
                               (len(whole), 0)]:
            assert store.read_range(key, offset, length) == fs_store.read_range(key, offset, length), (key, offset)


def test_s3_errors_match_the_filesystem_errors(s3_repo: S3Repo) -> None:
    store = s3_repo.open()
    missing = "indices/nope/0/__missing"
    assert not store.exists(missing)
    for action in (store.read, store.size, lambda key: store.read_range(key, 0, 1)):
        with pytest.raises(BlobNotFoundError, match=missing) as info:
            action(missing)
        assert s3_repo.uri in str(info.value)
    # Clipped by S3 (206 with fewer bytes) and refused by S3 (416): both name the key, offset and size.
    with pytest.raises(BlobRangeError, match=r"index\.latest.*8 bytes at offset 4.*only 8 bytes"):
        store.read_range("index.latest", 4, 8)
    with pytest.raises(BlobRangeError, match=r"index\.latest.*offset 8.*only 8 bytes"):
        store.read_range("index.latest", 8, 1)
    with pytest.raises(BlobRangeError, match=r"offset 9.*only 8 bytes"):
        store.read_range("index.latest", 9, 0)
    with pytest.raises(BlobNotFoundError, match="not a blob key"):
        store.read("../index-1")
    assert ACCESS_KEY not in str(info.value) and SECRET_KEY not in str(info.value)


def test_s3_read_range_transfers_only_the_range(s3_env: str, tmp_path: Path) -> None:
    # A 3 MiB blob: a ranged read must come back as a 64-byte response, not the whole object.
    repo = tmp_path / "repo"
    (repo / "indices" / "i" / "0").mkdir(parents=True)
    payload = os.urandom(3 * 1024 * 1024)
    (repo / "indices" / "i" / "0" / "__big").write_bytes(payload)
    (repo / "index.latest").write_bytes(struct.pack(">q", 0))
    client = s3_client(endpoint=s3_env, region=REGION)
    bucket = unique("blobstore-big")
    client.create_bucket(Bucket=bucket)
    assert upload_directory(repo, client, bucket, "") == 2
    store = open_blob_store(f"s3://{bucket}", s3_endpoint=s3_env, s3_region=REGION)
    assert isinstance(store, S3BlobStore)
    lengths: list[int] = []

    def record(parsed: dict[str, Any], **_: Any) -> None:
        lengths.append(int(parsed["ContentLength"]))

    store.client.meta.events.register("after-call.s3.GetObject", record)
    offset = 2 * 1024 * 1024 + 17
    assert store.read_range("indices/i/0/__big", offset, 64) == payload[offset:offset + 64]
    assert lengths == [64]
    assert store.size("indices/i/0/__big") == len(payload)
    assert store.list() == ["index.latest", "indices/i/0/__big"]


def test_s3_prefix_does_not_match_a_sibling(s3_repo: S3Repo) -> None:
    # "repo" and "repo-old" side by side: the store for "repo" sees only its own keys.
    sibling = s3_repo.prefix + "-old"
    upload_directory(FIXTURE, s3_repo.client, s3_repo.bucket, sibling)
    store = s3_repo.open()
    assert store.list() == sorted(fixture_files())
    # Slashes around the prefix in the URI are tolerated, and no key gets a double slash.
    slashed = s3_repo.open(f"s3://{s3_repo.bucket}//{s3_repo.prefix}/")
    assert slashed.uri == s3_repo.uri and slashed.list() == store.list()
    assert not any("//" in key for key in raw_keys(s3_repo.client, s3_repo.bucket))


def test_s3_missing_prefix_or_bucket_is_not_a_repository(s3_repo: S3Repo) -> None:
    with pytest.raises(RepositoryNotFoundError, match=rf"s3://{s3_repo.bucket}/missing-prefix"):
        s3_repo.open(f"s3://{s3_repo.bucket}/missing-prefix")
    # A prefix of the repository's prefix is not the repository: keys are matched on whole path segments.
    with pytest.raises(RepositoryNotFoundError):
        s3_repo.open(f"s3://{s3_repo.bucket}/{s3_repo.prefix[:-2]}")
    missing_bucket = unique("no-such-bucket")
    with pytest.raises(RepositoryNotFoundError, match=missing_bucket) as info:
        s3_repo.open(f"s3://{missing_bucket}/repo")
    assert SECRET_KEY not in str(info.value) and ACCESS_KEY not in str(info.value)

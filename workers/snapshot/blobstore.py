"""Blob stores for snapshot repositories: one read-only key/value view over a filesystem directory or an S3 prefix.

Keys are relative to the repository root and use "/" separators ("index-1", "indices/<id>/0/__<blob>"), on every
store. Layout: the repository root as Elasticsearch's BlobStoreRepository writes it.
"""

from __future__ import annotations

import builtins
import os
import re
import stat
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

import boto3
from boto3.exceptions import S3UploadFailedError
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from workers.common.errors import ConfigurationError, MigrationError

# boto3 has no inline type hints and mypy-boto3-s3 is not a dependency: an S3 client is typed as Any.
S3Client = Any

ACCEPTED_FORMS = "file:///absolute/path, /absolute/path or s3://bucket[/prefix]"

# Error codes S3 (and moto, MinIO, ...) use for "no such object"; HEAD responses have no body, so only "404".
_NOT_FOUND_CODES = frozenset({"404", "NoSuchKey", "NotFound"})
_CONTENT_RANGE = re.compile(r"bytes (\d+)-(\d+)/(\d+|\*)")


class BlobStoreError(MigrationError):
    """A blob store could not answer; the message names the key and the store URI."""


class BlobNotFoundError(BlobStoreError):
    """The key names no blob in the repository."""


class RepositoryNotFoundError(BlobStoreError):
    """The repository root (directory, bucket or prefix) does not exist or holds nothing."""


class BlobRangeError(BlobStoreError):
    """A range read asked for bytes past the end of the blob."""


def check_key(key: str, uri: str) -> None:
    """Refuse keys that are not plain relative "/"-separated paths (empty, absolute, "." or ".." parts)."""
    # Keys come from repository metadata, which is input: a crafted "../" must not escape the repository root.
    parts = key.split("/")
    if not key or key.startswith("/") or any(part in ("", ".", "..") for part in parts) or "\\" in key:
        raise BlobNotFoundError(f"{key!r} is not a blob key in {uri}: keys are relative paths such as 'index-1'")


def _range_error(key: str, uri: str, offset: int, length: int, size: int) -> BlobRangeError:
    return BlobRangeError(
        f"{key} in {uri}: cannot read {length} bytes at offset {offset}: the blob has only {size} bytes"
    )


def _check_range_args(key: str, offset: int, length: int) -> None:
    if offset < 0 or length < 0:
        raise ValueError(f"{key}: offset and length must be >= 0 (got offset {offset}, length {length})")


class BlobStore(ABC):
    """A read-only view of one snapshot repository's blobs."""

    uri: str

    @abstractmethod
    def list(self, prefix: str = "") -> builtins.list[str]:
        """Every key that starts with ``prefix``, sorted."""

    @abstractmethod
    def size(self, key: str) -> int:
        """The blob's length in bytes."""

    @abstractmethod
    def read(self, key: str) -> bytes:
        """The whole blob."""

    @abstractmethod
    def read_range(self, key: str, offset: int, length: int) -> bytes:
        """Exactly ``length`` bytes from ``offset``; BlobRangeError when the blob ends earlier."""

    @abstractmethod
    def exists(self, key: str) -> bool:
        """True when ``key`` names a blob."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.uri!r})"


class FileSystemBlobStore(BlobStore):
    """A repository on a local or shared filesystem (an fs repository's ``location``)."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root).absolute()
        self.uri = self.root.as_uri()
        if not self.root.is_dir():
            raise RepositoryNotFoundError(f"no snapshot repository at {self.uri}: the directory does not exist")

    def _path(self, key: str) -> Path:
        check_key(key, self.uri)
        return self.root.joinpath(*key.split("/"))

    def list(self, prefix: str = "") -> builtins.list[str]:
        """Every file under the root whose relative path starts with ``prefix``, sorted."""
        if not self.root.is_dir():
            raise RepositoryNotFoundError(f"no snapshot repository at {self.uri}: the directory is gone")
        # Walk only the directory the prefix points into, not the whole repository.
        directory, _, _ = prefix.rpartition("/")
        if any(part in (".", "..") for part in directory.split("/")):
            return []  # no key has such a segment, and walking there could leave the repository
        start = self.root.joinpath(*directory.split("/")) if directory else self.root
        keys = []
        for dirpath, _dirnames, filenames in os.walk(start):
            base = Path(dirpath).relative_to(self.root).as_posix()
            for name in filenames:
                key = name if base == "." else f"{base}/{name}"
                if key.startswith(prefix):
                    keys.append(key)
        return sorted(keys)

    def size(self, key: str) -> int:
        """The file's length (a directory is not a blob)."""
        path = self._path(key)
        try:
            info = path.stat()
        except (FileNotFoundError, NotADirectoryError):
            raise BlobNotFoundError(f"blob {key} not found in {self.uri}") from None
        except OSError as exc:
            raise BlobStoreError(f"cannot stat {key} in {self.uri}: {exc.strerror}") from None
        if not stat.S_ISREG(info.st_mode):
            raise BlobNotFoundError(f"blob {key} not found in {self.uri} (it is not a regular file)")
        return info.st_size

    def read(self, key: str) -> bytes:
        """The whole file."""
        path = self._path(key)
        try:
            return path.read_bytes()
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            raise BlobNotFoundError(f"blob {key} not found in {self.uri}") from None
        except OSError as exc:
            raise BlobStoreError(f"cannot read {key} in {self.uri}: {exc.strerror}") from None

    def read_range(self, key: str, offset: int, length: int) -> bytes:
        """``length`` bytes at ``offset`` with pread: only those bytes are read."""
        _check_range_args(key, offset, length)
        path = self._path(key)
        try:
            fd = os.open(path, os.O_RDONLY)
        except (FileNotFoundError, NotADirectoryError):
            raise BlobNotFoundError(f"blob {key} not found in {self.uri}") from None
        except OSError as exc:
            raise BlobStoreError(f"cannot open {key} in {self.uri}: {exc.strerror}") from None
        try:
            info = os.fstat(fd)
            if not stat.S_ISREG(info.st_mode):
                raise BlobNotFoundError(f"blob {key} not found in {self.uri} (it is not a regular file)")
            if offset + length > info.st_size:
                raise _range_error(key, self.uri, offset, length, info.st_size)
            chunks = []
            done = 0
            # pread may return fewer bytes than asked (large reads, network filesystems): loop until done.
            while done < length:
                chunk = os.pread(fd, length - done, offset + done)
                if not chunk:  # the file shrank after fstat
                    raise _range_error(key, self.uri, offset, length, offset + done)
                chunks.append(chunk)
                done += len(chunk)
            return b"".join(chunks)
        except OSError as exc:
            raise BlobStoreError(f"cannot read {key} in {self.uri}: {exc.strerror}") from None
        finally:
            os.close(fd)

    def exists(self, key: str) -> bool:
        """True for a regular file at ``key``."""
        return self._path(key).is_file()


def join_key(prefix: str, key: str) -> str:
    """``prefix/key`` with no empty segments: no leading, trailing or double slashes."""
    return "/".join(part for part in f"{prefix}/{key}".split("/") if part)


class S3BlobStore(BlobStore):
    """A repository in an S3 bucket under a prefix (the S3 repository's ``base_path``), read with ``client``."""

    def __init__(self, bucket: str, prefix: str, client: S3Client) -> None:
        self.bucket = bucket
        self.prefix = join_key(prefix, "")
        # The prefix always ends in "/" when set, so "repo" never matches keys of a sibling "repo-old".
        self._key_prefix = f"{self.prefix}/" if self.prefix else ""
        self.client = client
        self.uri = f"s3://{bucket}/{self.prefix}" if self.prefix else f"s3://{bucket}"

    def _object_key(self, key: str) -> str:
        check_key(key, self.uri)
        return self._key_prefix + key

    def _error(self, exc: Exception, action: str, key: str | None) -> BlobStoreError:
        """Translate a botocore error; only S3's code and message, which never hold credentials."""
        where = f"{key} in {self.uri}" if key else self.uri
        if isinstance(exc, ClientError):
            error = exc.response.get("Error", {})
            code = str(error.get("Code", ""))
            if code == "NoSuchBucket":
                return RepositoryNotFoundError(f"no snapshot repository at {self.uri}: bucket {self.bucket} "
                                               f"does not exist")
            if key is not None and code in _NOT_FOUND_CODES:
                return BlobNotFoundError(f"blob {key} not found in {self.uri}")
            return BlobStoreError(f"cannot {action} {where}: S3 error {code}: {error.get('Message', '')}".rstrip(": "))
        return BlobStoreError(f"cannot {action} {where}: {type(exc).__name__}: {exc}")

    def probe(self) -> None:
        """RepositoryNotFoundError unless the bucket exists and holds at least one key under the prefix."""
        try:
            response = self.client.list_objects_v2(Bucket=self.bucket, Prefix=self._key_prefix, MaxKeys=1)
        except (ClientError, BotoCoreError) as exc:
            raise self._error(exc, "list", None) from None
        if not response.get("Contents"):
            raise RepositoryNotFoundError(f"no snapshot repository at {self.uri}: nothing is stored under it "
                                          f"(no index.latest, no index-N)")

    def list(self, prefix: str = "") -> builtins.list[str]:
        """Every key under the prefix that starts with ``prefix``, sorted; pages through list_objects_v2."""
        keys = []
        try:
            paginator = self.client.get_paginator("list_objects_v2")
            for page in paginator.paginate(Bucket=self.bucket, Prefix=self._key_prefix + prefix):
                for item in page.get("Contents", []):
                    key = item["Key"][len(self._key_prefix):]
                    # Zero-byte "folder/" markers some tools create are not blobs; a filesystem lists no directories.
                    if key and not key.endswith("/"):
                        keys.append(key)
        except (ClientError, BotoCoreError) as exc:
            raise self._error(exc, "list", None) from None
        return sorted(keys)

    def size(self, key: str) -> int:
        """ContentLength from a HEAD request."""
        try:
            response = self.client.head_object(Bucket=self.bucket, Key=self._object_key(key))
        except (ClientError, BotoCoreError) as exc:
            raise self._error(exc, "stat", key) from None
        return int(response["ContentLength"])

    def read(self, key: str) -> bytes:
        """The whole object in one GET."""
        try:
            response = self.client.get_object(Bucket=self.bucket, Key=self._object_key(key))
            data: bytes = response["Body"].read()
        except (ClientError, BotoCoreError) as exc:
            raise self._error(exc, "read", key) from None
        return data

    def read_range(self, key: str, offset: int, length: int) -> bytes:
        """``length`` bytes at ``offset`` with one ranged GET: only those bytes are transferred."""
        _check_range_args(key, offset, length)
        object_key = self._object_key(key)
        if length == 0:
            # "bytes=a-(a-1)" is not a valid range; a HEAD still checks the key and the offset.
            size = self.size(key)
            if offset > size:
                raise _range_error(key, self.uri, offset, length, size)
            return b""
        try:
            response = self.client.get_object(
                Bucket=self.bucket, Key=object_key, Range=f"bytes={offset}-{offset + length - 1}"
            )
            data: bytes = response["Body"].read()
        except ClientError as exc:
            error = exc.response.get("Error", {})
            if error.get("Code") == "InvalidRange":  # 416: the offset is at or past the end
                # S3 states the blob's size in the error; a HEAD is the fallback for stores that do not.
                actual = str(error.get("ActualObjectSize", ""))
                size = int(actual) if actual.isdigit() else self.size(key)
                raise _range_error(key, self.uri, offset, length, size) from None
            raise self._error(exc, "read", key) from None
        except BotoCoreError as exc:
            raise self._error(exc, "read", key) from None
        if len(data) != length:
            # S3 clips a range that runs past the end; Content-Range "bytes a-b/total" says how long the blob is.
            match = _CONTENT_RANGE.fullmatch(str(response.get("ContentRange", "")))
            total = int(match.group(3)) if match and match.group(3) != "*" else self.size(key)
            raise _range_error(key, self.uri, offset, length, total)
        return data

    def exists(self, key: str) -> bool:
        """True when a HEAD request finds the object."""
        try:
            self.client.head_object(Bucket=self.bucket, Key=self._object_key(key))
        except ClientError as exc:
            if str(exc.response.get("Error", {}).get("Code", "")) in _NOT_FOUND_CODES:
                return False
            raise self._error(exc, "stat", key) from None
        except BotoCoreError as exc:
            raise self._error(exc, "stat", key) from None
        return True


def s3_client(*, endpoint: str | None = None, region: str | None = None) -> S3Client:
    """A boto3 S3 client with credentials from the usual AWS chain (environment, profile, instance role)."""
    # Never pass keys here: the chain keeps them out of configuration files, logs and error messages.
    config = Config(retries={"max_attempts": 10, "mode": "standard"})
    return boto3.client("s3", endpoint_url=endpoint, region_name=region, config=config)


def open_blob_store(uri: str, *, s3_endpoint: str | None = None, s3_region: str | None = None) -> BlobStore:
    """The blob store for ``uri``: file:///abs/path or /abs/path (filesystem), s3://bucket[/prefix] (S3)."""
    parsed = urlparse(uri)
    if parsed.scheme == "" and uri.startswith("/"):
        return FileSystemBlobStore(Path(uri))
    if parsed.scheme == "file":
        # file:///path or file://localhost/path; any other host is a remote machine we cannot open.
        if parsed.netloc not in ("", "localhost") or not parsed.path.startswith("/"):
            raise ConfigurationError(f"repository URI {uri!r} is not a local absolute path; use {ACCEPTED_FORMS}")
        return FileSystemBlobStore(Path(unquote(parsed.path)))
    if parsed.scheme == "s3":
        if not parsed.netloc:
            raise ConfigurationError(f"repository URI {uri!r} names no bucket; use {ACCEPTED_FORMS}")
        store = S3BlobStore(parsed.netloc, parsed.path, s3_client(endpoint=s3_endpoint, region=s3_region))
        store.probe()
        return store
    raise ConfigurationError(f"unsupported repository URI {uri!r}; use {ACCEPTED_FORMS}")


def upload_directory(local_root: Path, client: S3Client, bucket: str, prefix: str) -> int:
    """Upload every file under ``local_root`` to ``bucket`` under ``prefix`` (same relative keys); returns the count."""
    root = Path(local_root)
    if not root.is_dir():
        raise RepositoryNotFoundError(f"no snapshot repository at {root.absolute().as_uri()}: "
                                      f"the directory does not exist")
    source = FileSystemBlobStore(root)
    keys = source.list()
    for key in keys:
        destination = join_key(prefix, key)
        try:
            # upload_file switches to multipart for large Lucene files instead of holding them in memory.
            client.upload_file(str(source.root.joinpath(*key.split("/"))), bucket, destination)
        except (ClientError, BotoCoreError, S3UploadFailedError) as exc:
            raise BlobStoreError(f"cannot upload {key} from {source.uri} to s3://{bucket}/{destination}: "
                                 f"{type(exc).__name__}: {exc}") from None
    return len(keys)

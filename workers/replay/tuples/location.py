"""Where tuple files live: a local folder or ``s3://bucket/prefix``. A file appears there whole or not at all."""

from __future__ import annotations

import os
import tempfile
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any

import pyarrow as pa

from workers.common.errors import MigrationError

SUFFIX = ".parquet"


class TupleStoreError(MigrationError):
    """Tuple files could not be written or read; the message names the location."""


class TupleLocation(ABC):
    """A folder of tuple files: finished files are published into it, and listed and read back from it."""

    uri: str

    @abstractmethod
    def staging_path(self, name: str) -> Path:
        """Where the file ``name`` is written while it is being filled (never read by :meth:`names`)."""

    @abstractmethod
    def publish(self, staged: Path, name: str) -> str:
        """Make the finished file ``staged`` appear as ``name``, atomically; returns where it went."""

    @abstractmethod
    def names(self) -> list[str]:
        """The published tuple files, in name order (which is time order)."""

    @abstractmethod
    def open(self, name: str) -> pa.NativeFile:
        """One published file, to read."""


class LocalLocation(TupleLocation):
    """A local folder (created on first write); or one file, which is then the only one listed."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.uri = str(path)

    def staging_path(self, name: str) -> Path:
        self.path.mkdir(parents=True, exist_ok=True)
        # In the same folder, so that the rename is atomic; hidden, so that readers skip it.
        return self.path / f".{name}.tmp"

    def publish(self, staged: Path, name: str) -> str:
        with open(staged, "rb") as f:
            os.fsync(f.fileno())
        final = self.path / name
        os.replace(staged, final)
        return str(final)

    def names(self) -> list[str]:
        if self.path.is_file():
            return [self.path.name]
        if not self.path.is_dir():
            raise TupleStoreError(f"no tuples at {self.path}: no such folder")
        return sorted(p.name for p in self.path.iterdir() if p.name.endswith(SUFFIX) and not p.name.startswith("."))

    def open(self, name: str) -> pa.NativeFile:
        path = self.path if self.path.is_file() else self.path / name
        try:
            return pa.memory_map(str(path))
        except OSError as exc:
            raise TupleStoreError(f"cannot read tuple file {path}: {exc.strerror or exc}") from None


class S3Location(TupleLocation):
    """Objects under ``s3://bucket/prefix/``; a file is staged on local disk and sent with one put_object."""

    def __init__(self, uri: str, *, endpoint: str | None = None, region: str | None = None,
                 spool_dir: Path | None = None, client: Any = None) -> None:
        from workers.snapshot.blobstore import s3_client

        bucket, _, prefix = uri[len("s3://"):].partition("/")
        if not bucket:
            raise TupleStoreError(f"tuple location {uri!r} names no bucket; use s3://bucket/prefix")
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.uri = f"s3://{bucket}/{self.prefix}" if self.prefix else f"s3://{bucket}"
        self.client = client or s3_client(endpoint=endpoint, region=region)
        self.spool_dir = spool_dir

    def _key(self, name: str) -> str:
        return f"{self.prefix}/{name}" if self.prefix else name

    def staging_path(self, name: str) -> Path:
        folder = self.spool_dir or Path(tempfile.gettempdir())
        folder.mkdir(parents=True, exist_ok=True)
        return folder / f".{name}.tmp"

    def publish(self, staged: Path, name: str) -> str:
        from botocore.exceptions import BotoCoreError, ClientError

        key = self._key(name)
        try:
            with open(staged, "rb") as f:
                self.client.put_object(Bucket=self.bucket, Key=key, Body=f)
        except (BotoCoreError, ClientError) as exc:
            # The staged file stays: its rows are not lost, and the message says where they are.
            raise TupleStoreError(f"cannot write tuple file s3://{self.bucket}/{key}: {exc} "
                                  f"(kept locally at {staged})") from None
        staged.unlink()
        return f"s3://{self.bucket}/{key}"

    def names(self) -> list[str]:
        from botocore.exceptions import BotoCoreError, ClientError

        if self.prefix.endswith(SUFFIX):
            return [self.prefix.rsplit("/", 1)[-1]]
        names: list[str] = []
        try:
            for page in self.client.get_paginator("list_objects_v2").paginate(
                    Bucket=self.bucket, Prefix=f"{self.prefix}/" if self.prefix else ""):
                for obj in page.get("Contents", []):
                    name = obj["Key"][len(self.prefix) + 1 if self.prefix else 0:]
                    if name.endswith(SUFFIX) and "/" not in name:
                        names.append(name)
        except (BotoCoreError, ClientError) as exc:
            raise TupleStoreError(f"cannot list tuples at {self.uri}: {exc}") from None
        return sorted(names)

    def open(self, name: str) -> pa.NativeFile:
        from botocore.exceptions import BotoCoreError, ClientError

        key = self.prefix if self.prefix.endswith(SUFFIX) else self._key(name)
        try:
            body: bytes = self.client.get_object(Bucket=self.bucket, Key=key)["Body"].read()
        except (BotoCoreError, ClientError) as exc:
            raise TupleStoreError(f"cannot read tuple file s3://{self.bucket}/{key}: {exc}") from None
        return pa.BufferReader(body)


def open_location(uri: str | Path, *, s3_endpoint: str | None = None, s3_region: str | None = None,
                  spool_dir: Path | None = None) -> TupleLocation:
    """``s3://bucket/prefix``: S3; ``file:///path`` or a path: a local folder (or a single file, to read)."""
    if isinstance(uri, Path):
        return LocalLocation(uri)
    if uri.startswith("s3://"):
        return S3Location(uri, endpoint=s3_endpoint, region=s3_region, spool_dir=spool_dir)
    return LocalLocation(Path(uri.removeprefix("file://")))

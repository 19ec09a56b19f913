"""Shared fixtures: one real sandbox (default pair + Kafka + moto S3) for the whole test session."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from migration_pipeline.sandbox import manager
from migration_pipeline.sandbox.paths import NAME_ENV
from migration_pipeline.sandbox.state import SandboxState

# The sample snapshot repositories and the documents each holds, kept in the repository (tests/fixtures/README.md).
# Read-only for tests: a test that alters a file copies the repository to its tmp_path first.
FIXTURES_DIR = Path(__file__).resolve().parent / "fixtures"
FIXTURE_SNAPSHOTS = FIXTURES_DIR / "snapshots"
FIXTURE_EXPECTED = FIXTURES_DIR / "expected"


def unique(prefix: str) -> str:
    """A name no other test uses (indices, topics, buckets)."""
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="session", autouse=True)
def isolated_dagster_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A fresh DAGSTER_HOME for the session: no workflow config a user (or `make demo`) made is picked up."""
    saved = {k: os.environ.get(k) for k in ("DAGSTER_HOME", "MIGRATION_WORKFLOW_CONFIG", "DAGSTER_URL")}
    home = tmp_path_factory.mktemp("dagster_home")
    os.environ["DAGSTER_HOME"] = str(home)
    os.environ.pop("MIGRATION_WORKFLOW_CONFIG", None)
    os.environ.pop("DAGSTER_URL", None)
    yield home
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


@pytest.fixture(scope="session")
def sandbox() -> Iterator[SandboxState]:
    """The default pair, Kafka and S3, started once for the session under a name of its own."""
    name = f"pytest-{os.getpid()}"
    previous = os.environ.get(NAME_ENV)
    os.environ[NAME_ENV] = name  # so resources and CLIs in subprocesses find this sandbox
    try:
        state = manager.up(manager.UpRequest(kafka=True, s3=True), name=name)
        yield state
    finally:
        manager.down(name)
        if previous is None:
            os.environ.pop(NAME_ENV, None)
        else:
            os.environ[NAME_ENV] = previous


@pytest.fixture(scope="session")
def kube_sandbox(sandbox: SandboxState) -> SandboxState:
    """The session's sandbox with its Kubernetes cluster too (built from source on the first run, ~12 min)."""
    state = manager.up(manager.UpRequest(kafka=True, s3=True, kubernetes=True), name=sandbox.name)
    assert state.kubernetes is not None
    return state


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """AWS credentials of the sandbox's moto server in the environment (the usual credential chain finds them)."""
    from migration_pipeline.sandbox import s3 as sandbox_s3

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", sandbox_s3.ACCESS_KEY)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", sandbox_s3.SECRET_KEY)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)

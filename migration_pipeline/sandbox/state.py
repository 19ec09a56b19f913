"""The sandbox's state file: what runs, where, under which PIDs; shared by separate CLI invocations."""

from __future__ import annotations

import fcntl
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from migration_pipeline.sandbox.engine import EngineNode
from migration_pipeline.sandbox.kafka import KafkaNode
from migration_pipeline.sandbox.kubernetes.control_plane import KubernetesCluster
from migration_pipeline.sandbox.paths import ensure_dir, sandbox_dir, sandbox_name
from migration_pipeline.sandbox.s3 import S3Server

STATE_FILE = "state.json"


@dataclass
class SandboxState:
    """Everything one sandbox has started."""

    name: str
    root: Path
    engines: dict[str, EngineNode] = field(default_factory=dict)
    kafka: KafkaNode | None = None
    s3: S3Server | None = None
    kubernetes: KubernetesCluster | None = None

    @property
    def empty(self) -> bool:
        """True when nothing is recorded."""
        return not self.engines and self.kafka is None and self.s3 is None and self.kubernetes is None

    def to_dict(self) -> dict[str, Any]:
        """The JSON form written to the state file."""
        return {
            "name": self.name,
            "engines": {role: node.to_dict() for role, node in self.engines.items()},
            "kafka": self.kafka.to_dict() if self.kafka else None,
            "s3": self.s3.to_dict() if self.s3 else None,
            "kubernetes": self.kubernetes.to_dict() if self.kubernetes else None,
        }

    def summary(self) -> dict[str, Any]:
        """The connection facts scripts need: urls, engines, versions, repository paths, endpoints."""
        out: dict[str, Any] = {}
        for role, node in self.engines.items():
            out[role] = {"url": node.url, "engine": node.engine, "version": node.version,
                         "repo_path": node.repo_path}
        if self.kafka:
            out["kafka"] = {"bootstrap": self.kafka.bootstrap}
            sasl = self.kafka.sasl_facts()
            if sasl:
                out["kafka"]["sasl"] = sasl
        if self.s3:
            out["s3"] = {"endpoint": self.s3.endpoint}
        if self.kubernetes:
            out["kubernetes"] = {"kubeconfig": self.kubernetes.kubeconfig, "server": self.kubernetes.server,
                                 "version": self.kubernetes.version, "node": self.kubernetes.node_name}
        return out


def load(name: str | None = None) -> SandboxState:
    """Read the state of sandbox ``name`` (an empty state when none was started)."""
    resolved = sandbox_name(name)
    root = sandbox_dir(resolved)
    path = root / STATE_FILE
    if not path.is_file():
        return SandboxState(resolved, root)
    raw = json.loads(path.read_text())
    return SandboxState(
        name=resolved,
        root=root,
        engines={role: EngineNode(**node) for role, node in raw.get("engines", {}).items()},
        kafka=KafkaNode(**raw["kafka"]) if raw.get("kafka") else None,
        s3=S3Server(**raw["s3"]) if raw.get("s3") else None,
        kubernetes=KubernetesCluster(**raw["kubernetes"]) if raw.get("kubernetes") else None,
    )


def save(state: SandboxState) -> None:
    """Write the state atomically."""
    ensure_dir(state.root)
    tmp = state.root / f".{STATE_FILE}.{os.getpid()}"
    tmp.write_text(json.dumps(state.to_dict(), indent=2) + "\n")
    tmp.replace(state.root / STATE_FILE)


@contextmanager
def locked(name: str | None = None) -> Iterator[None]:
    """Hold the sandbox's lock so two invocations don't start or stop the same sandbox at once."""
    root = ensure_dir(sandbox_dir(name))
    with open(root / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)

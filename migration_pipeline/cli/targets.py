"""Which source and target the console talks to: a workflow file, the active one, or the running local sandbox."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import typer
from opensearchpy import OpenSearch

from migration_pipeline.sandbox import manager
from migration_pipeline.sandbox.errors import SandboxError
from workers.common.clusters import ClusterConnection, build_client
from workers.common.errors import ConfigurationError
from workflow_model.config import WorkflowConfig
from workflow_model.store import active_config_path, load_file

ROLES = ("source", "target")

ConfigOption = Annotated[Path | None, typer.Option(
    "--config", help="Workflow file to take the clusters from (default: the active workflow config, "
                     "else the running local sandbox).")]


@dataclass(frozen=True)
class Clusters:
    """The source and target connections and where they came from."""

    connections: dict[str, ClusterConnection]
    origin: str
    config: WorkflowConfig | None = None

    def connection(self, role: str) -> ClusterConnection:
        """The connection of ``source`` or ``target``; an error when ``origin`` has none."""
        if role not in ROLES:
            raise ConfigurationError(f"cluster must be source or target, not {role!r}")
        conn = self.connections.get(role)
        if conn is None:
            raise ConfigurationError(f"{self.origin} has no {role} cluster")
        return conn

    def client(self, role: str, *, max_retries: int = 0) -> OpenSearch:
        """A client for ``role``; configuration errors (a missing password variable) name the cluster."""
        conn = self.connection(role)
        try:
            return build_client(conn, max_retries=max_retries)
        except ConfigurationError as exc:
            raise ConfigurationError(f"{role} cluster {conn.endpoint}: {exc}") from None


def resolve(config_file: Path | None, say: Callable[[str], None]) -> Clusters:
    """``config_file``, else the active workflow config, else the running sandbox (``say`` tells which)."""
    if config_file is not None:
        return _from_config(load_file(config_file), str(config_file))
    active = active_config_path()
    if active.is_file():
        return _from_config(load_file(active), str(active))
    try:
        state = manager.running()
    except SandboxError as exc:
        raise ConfigurationError(f"no workflow config is active (looked for {active}) and {exc}; "
                                 "pass --config FILE or load one with: workflow configure --load FILE") from None
    connections = {role: ClusterConnection(endpoint=node.url) for role, node in state.engines.items() if node.alive()}
    origin = f"the local sandbox {state.name!r}"
    say(f"no workflow config is active (looked for {active}); using {origin}: "
        + ", ".join(f"{role} {conn.endpoint}" for role, conn in connections.items()))
    return Clusters(connections, origin)


def _from_config(config: WorkflowConfig, origin: str) -> Clusters:
    return Clusters({"source": config.source.connection(), "target": config.target.connection()},
                    f"workflow config {origin}", config)

"""A workflow file for the running local sandbox (the demo's and the tests')."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from migration_pipeline.sandbox.state import SandboxState
from workers.common.errors import ConfigurationError


def sandbox_workflow(state: SandboxState, *, repository: str = "migration_assistant", create: str | None = None,
                     existing: str | None = None, location: str | None = None, indices: list[str] | None = None,
                     skip_approvals: bool = False, **sections: dict[str, Any]) -> str:
    """YAML text of a workflow from the sandbox's source to its target; ``sections`` override whole sections."""
    if "source" not in state.engines or "target" not in state.engines:
        raise ConfigurationError(f"sandbox {state.name} needs a source and a target")
    source, target = state.engines["source"], state.engines["target"]
    snapshot: dict[str, Any] = {
        "repository": {"name": repository, "location": location or str(Path(source.repo_path) / repository)},
        "indices": indices or ["*", "-.*"],
    }
    if state.s3 is not None:
        snapshot["repository"]["s3"] = {"endpoint": state.s3.endpoint, "region": "us-east-1"}
    if existing:
        snapshot["existing"] = existing
    else:
        snapshot["create"] = create or "migration-{timestamp}"
    doc: dict[str, Any] = {
        "version": 1,
        "source": {"endpoint": source.url, "version": f"{source.engine}:{source.version}"},
        "target": {"endpoint": target.url},
        "snapshot": snapshot,
        "approvals": {"skip_all": skip_approvals},
    }
    for key, value in sections.items():
        doc[key] = {**doc.get(key, {}), **value}
    return "# generated for the local sandbox\n" + yaml.safe_dump(doc, sort_keys=False)

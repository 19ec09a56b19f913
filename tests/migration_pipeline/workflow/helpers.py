"""Running the ``workflow`` CLI as a user would (a subprocess), on a workflow file of the test's own."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from opensearchpy import OpenSearch

from migration_pipeline.sandbox import loader
from migration_pipeline.sandbox.state import SandboxState
from migration_pipeline.sandbox.workflow_file import sandbox_workflow
from tests.conftest import unique

BIN = Path(sys.executable).parent


@dataclass
class Migration:
    """A test's own indices on the source, its workflow file and its Dagster home."""

    prefix: str
    home: Path
    config: Path
    env: dict[str, str]
    source: str
    target: str
    counts: dict[str, int]

    def run(self, *args: str, timeout: float = 600, check: bool = False) -> subprocess.CompletedProcess[str]:
        """``workflow ARGS`` with this migration's environment."""
        proc = subprocess.run([str(BIN / "workflow"), *args], env=self.env, capture_output=True, text=True,
                              timeout=timeout)
        if check:
            assert proc.returncode == 0, f"workflow {' '.join(args)}: {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
        return proc

    def status(self, *extra: str) -> dict[str, Any]:
        """``workflow status --json``."""
        proc = self.run("status", "--json", *extra, check=True)
        data: dict[str, Any] = json.loads(proc.stdout)
        return data

    def states(self, *extra: str) -> dict[str, str]:
        """Phase name → state."""
        return {p["name"]: p["state"] for p in self.status(*extra)["phases"]}


def build_migration(sandbox: SandboxState, tmp_path: Path, *, docs: int = 300, skip_approvals: bool = False,
                    backfill: dict[str, Any] | None = None, **overrides: Any) -> Migration:
    """Two small indices of the test's own on the source, and a workflow file that moves only them."""
    prefix = unique("wf")
    source, target = sandbox.engines["source"].url, sandbox.engines["target"].url
    counts = {f"{prefix}-logs": docs, f"{prefix}-orders": docs // 3}
    loader.load(source, f"{prefix}-logs", counts[f"{prefix}-logs"], profile_name="logs", shards=2, seed=3)
    loader.load(source, f"{prefix}-orders", counts[f"{prefix}-orders"], profile_name="nested", shards=1,
                routing=True, seed=4)
    mine = [f"regex:{prefix}.*"]
    text = sandbox_workflow(
        sandbox, repository=prefix, indices=[f"{prefix}-*"], skip_approvals=skip_approvals,
        metadata={"index_allowlist": mine, "index_template_allowlist": mine, "component_template_allowlist": mine},
        backfill={"coordination_index": f".mws-{prefix}", "dead_letter": str(tmp_path / "dead"), **(backfill or {})},
        **overrides)
    config = tmp_path / "workflow.yaml"
    config.write_text(text)
    home = tmp_path / "dagster"
    home.mkdir()
    env = {**os.environ, "DAGSTER_HOME": str(home), "MIGRATION_SANDBOX_NAME": sandbox.name}
    env.pop("DAGSTER_URL", None)
    migration = Migration(prefix, home, config, env, source, target, counts)
    migration.run("configure", "--load", str(config), check=True)
    return migration


def target_rows(url: str, index: str) -> dict[str, Any]:
    """id → source of every document of ``index`` on a cluster (small indices only)."""
    client = OpenSearch(hosts=[url], timeout=60)
    client.indices.refresh(index=index)
    hits = client.search(index=index, body={"size": 10_000, "query": {"match_all": {}}})["hits"]["hits"]
    return {h["_id"]: h["_source"] for h in hits}


def edit_config(path: Path, **changes: Any) -> str:
    """The workflow file with top-level sections updated."""
    doc = yaml.safe_load(path.read_text())
    for key, value in changes.items():
        doc[key] = {**doc.get(key, {}), **value}
    return yaml.safe_dump(doc, sort_keys=False)

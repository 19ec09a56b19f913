"""``console metadata evaluate|migrate`` as a user runs it: a real process against the real sandbox."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from migration_pipeline.sandbox.state import SandboxState
from tests.conftest import FIXTURE_SNAPSHOTS, unique
from tests.workers.metadata.authproxy import basic_auth_proxy
from tests.workers.metadata.scenario import Scenario, build_es7, cleanup

CONSOLE = str(Path(sys.executable).parent / "console")
FIXTURE = str(FIXTURE_SNAPSHOTS / "ES_5_6_Updates_Deletes")


def console(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([CONSOLE, *args], capture_output=True, text=True, timeout=180,
                          env={**os.environ, "COLUMNS": "200", **(env or {})})


@pytest.fixture(scope="module")
def scenario(sandbox: SandboxState) -> Iterator[Scenario]:
    source, target = sandbox.engines["source"], sandbox.engines["target"]
    prefix = unique("mdcli")
    try:
        yield build_es7(source.url, target.url, prefix)
    finally:
        cleanup(source.url, prefix)
        cleanup(target.url, prefix)


def _mine(s: Scenario) -> list[str]:
    allow = f"regex:{s.prefix}.*"
    return ["--index-allowlist", allow, "--index-template-allowlist", allow, "--component-template-allowlist", allow]


def _flags(s: Scenario) -> list[str]:
    return ["--source-endpoint", s.source_url, "--target-endpoint", s.target_url, *_mine(s)]


def _rows(stdout: str, prefix: str) -> list[dict[str, object]]:
    return [r for r in json.loads(stdout)["rows"] if str(r["source_name"]).startswith(prefix)]


def test_evaluate_migrate_and_evaluate_again(scenario: Scenario) -> None:
    table = console("metadata", "evaluate", *_flags(scenario))
    assert table.returncode == 0, table.stderr
    assert f"{scenario.prefix}-custom" in table.stdout and "create" in table.stdout
    assert "strip-internal-settings" in table.stdout
    plan = console("metadata", "evaluate", *_flags(scenario), "--output", "json")
    assert plan.returncode == 0, plan.stderr
    assert {r["action"] for r in _rows(plan.stdout, scenario.prefix)} == {"create"}
    done = console("metadata", "migrate", *_flags(scenario), "--output", "json")
    assert done.returncode == 0, done.stderr
    assert {r["result"] for r in _rows(done.stdout, scenario.prefix)} == {"created"}
    again = console("metadata", "migrate", *_flags(scenario))
    assert again.returncode == 0, again.stderr
    assert "exists-identical" in again.stdout and "unchanged" in again.stdout and "created" not in again.stdout


def test_config_file_gives_the_same_plan_as_flags(scenario: Scenario, tmp_path: Path) -> None:
    allow = [f"regex:{scenario.prefix}.*"]
    config = tmp_path / "workflow.yaml"
    config.write_text(yaml.safe_dump({
        "source": {"endpoint": scenario.source_url}, "target": {"endpoint": scenario.target_url},
        "metadata": {"index_allowlist": allow, "index_template_allowlist": allow,
                     "component_template_allowlist": allow, "replicas": 0}}))
    from_file = console("metadata", "evaluate", "--config", str(config), "--output", "json")
    from_flags = console("metadata", "evaluate", *_flags(scenario), "--replicas", "0", "--output", "json")
    assert from_file.returncode == from_flags.returncode
    assert _rows(from_file.stdout, scenario.prefix) == _rows(from_flags.stdout, scenario.prefix)
    indices = [r for r in _rows(from_file.stdout, scenario.prefix) if r["kind"] == "index"]
    assert any("replica-override" in r["transformations"] for r in indices)  # type: ignore[operator]
    config.write_text("metadata:\n  replicas: many\n  colour: blue\n")
    bad = console("metadata", "evaluate", "--config", str(config))
    assert bad.returncode == 2
    assert "metadata.replicas" in bad.stderr and "metadata.colour" in bad.stderr and "Traceback" not in bad.stderr


def test_snapshot_source(sandbox: SandboxState) -> None:
    result = console("metadata", "evaluate", "--snapshot-repo", FIXTURE, "--snapshot", "rfs_snapshot",
                     "--target-endpoint", sandbox.engines["target"].url, "--output", "json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["source_version"] == "elasticsearch 5.6.16"
    [index] = [r for r in report["rows"] if r["kind"] == "index"]
    assert index["name"] == "test_updates_deletes" and "merge-mapping-types" in index["transformations"]


def test_blocked_objects_exit_3(scenario: Scenario) -> None:
    p = scenario.prefix
    result = console("metadata", "evaluate", *_flags(scenario), "--rename", f"regex:{p}-.*-1={p}-one")
    assert result.returncode == 3, result.stdout + result.stderr
    assert "name collision" in result.stdout and "blocked" in result.stdout


def test_invalid_regex_exits_2_without_traceback(scenario: Scenario) -> None:
    result = console("metadata", "evaluate", *_flags(scenario), "--index-allowlist", "regex:(oops")
    assert result.returncode == 2
    assert "index allow list: entry 'regex:(oops' is not a valid regular expression" in result.stderr
    assert "Traceback" not in result.stderr


def test_unreachable_target_exits_1_without_traceback(scenario: Scenario) -> None:
    args = ["metadata", "evaluate", "--source-endpoint", scenario.source_url,
            "--target-endpoint", "http://127.0.0.1:1", *_mine(scenario)]
    result = console(*args)
    assert result.returncode == 1
    assert "cannot reach http://127.0.0.1:1" in result.stderr and "Traceback" not in result.stderr
    debug = console("--debug", *args)
    assert "Traceback" in debug.stderr


def test_unauthorised_target_and_missing_password_variable(scenario: Scenario) -> None:
    with basic_auth_proxy(scenario.target_url, "admin", "s3cret") as url:
        base = ["metadata", "evaluate", "--source-endpoint", scenario.source_url, "--target-endpoint", url,
                *_mine(scenario), "--target-username", "admin", "--target-password-env", "MD_CLI_PASSWORD"]
        wrong = console(*base, env={"MD_CLI_PASSWORD": "nope"})
        assert wrong.returncode == 1
        assert "refused the credentials (401)" in wrong.stderr and "Traceback" not in wrong.stderr
        right = console(*base, "--output", "json", env={"MD_CLI_PASSWORD": "s3cret"})
        assert right.returncode == 0, right.stderr
        assert json.loads(right.stdout)["target"].startswith(f"{url} (basic auth as admin")
        missing = console(*base)  # the variable is not set at all
        assert missing.returncode == 2
        assert "environment variable MD_CLI_PASSWORD" in missing.stderr and "Traceback" not in missing.stderr

"""``migration sandbox`` as a user runs it: separate invocations sharing one state, and bad input."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from migration_pipeline.sandbox.catalog import MavenArtifact
from migration_pipeline.sandbox.errors import DownloadError
from migration_pipeline.sandbox.maven import fetch_artifact
from migration_pipeline.sandbox.paths import NAME_ENV, downloads_dir
from tests.conftest import unique


def migration(*args: str, name: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    env[NAME_ENV] = name
    env.pop("MIGRATION_DEBUG", None)
    return subprocess.run([sys.executable, "-m", "migration_pipeline.cli.main", *args], env=env,
                          capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)


# Opt-in (-m slow, 75 s): a second default pair of its own; the session sandbox and the demo's bare-shell test start
# the same engines through the same code in every default run.
@pytest.mark.slow
def test_up_status_down_default_pair() -> None:
    name = unique("cli")
    try:
        up = migration("sandbox", "up", "--json", name=name)
        assert up.returncode == 0, up.stderr
        facts = json.loads(up.stdout)
        assert set(facts) == {"source", "target"}
        assert facts["source"]["engine"] == "elasticsearch" and facts["source"]["version"] == "7.10.2"
        assert facts["target"]["engine"] == "opensearch" and facts["target"]["version"].startswith("2.19.")
        for role in ("source", "target"):
            assert set(facts[role]) == {"url", "engine", "version", "repo_path"}
            assert facts[role]["url"].startswith("http://127.0.0.1:")
            assert Path(facts[role]["repo_path"]).is_dir()
            with urllib.request.urlopen(facts[role]["url"], timeout=10) as resp:
                assert json.loads(resp.read())["version"]["number"] == facts[role]["version"]
        assert facts["source"]["url"] != facts["target"]["url"]

        # A second invocation sees the same sandbox and reuses it.
        again = migration("sandbox", "up", "--json", name=name)
        assert again.returncode == 0 and json.loads(again.stdout) == facts
        assert "already running" in again.stderr

        status = migration("sandbox", "status", "--json", name=name)
        info = json.loads(status.stdout)
        assert info["source"]["alive"] and info["target"]["alive"]
        assert "lang-painless" in info["source"]["modules"] and "reindex" in info["target"]["modules"]
        pids = [info["source"]["pid"], info["target"]["pid"]]
    finally:
        down = migration("sandbox", "down", name=name)
    assert down.returncode == 0 and down.stdout.count("stopped") == 2, down.stdout + down.stderr
    for pid in pids:
        assert not Path(f"/proc/{pid}").exists() or "Z" in Path(f"/proc/{pid}/stat").read_text().split()[2]
    status = migration("sandbox", "status", name=name)
    assert "no sandbox" in status.stdout


def test_down_with_nothing_running_says_so() -> None:
    result = migration("sandbox", "down", name=unique("empty"))
    assert result.returncode == 0
    assert "nothing to stop" in result.stdout


def test_unknown_engine_lists_supported() -> None:
    result = migration("sandbox", "up", "--source", "solr:9.1", name=unique("bad"))
    assert result.returncode == 2
    assert "unknown engine 'solr'" in result.stderr and "elasticsearch:7.10.2" in result.stderr
    assert "Traceback" not in result.stderr


def test_unsupported_version_lists_supported() -> None:
    result = migration("sandbox", "up", "--target", "opensearch:2.5.0", name=unique("bad"))
    assert result.returncode == 2
    assert "unsupported version opensearch:2.5.0" in result.stderr and "opensearch:2.19.6" in result.stderr


def test_engine_dying_at_start_shows_its_log() -> None:
    name = unique("dies")
    try:
        result = migration("sandbox", "up", "--target", "none", "--source-setting", "no.such.setting=1", name=name)
        assert result.returncode == 1
        assert "exited during start-up" in result.stderr
        assert "no.such.setting" in result.stderr  # the engine's own complaint, from its log
        assert "Traceback" not in result.stderr
    finally:
        migration("sandbox", "down", name=name)


def test_download_failure_names_coordinates_and_cache(tmp_path: Path) -> None:
    bogus = MavenArtifact("org.opensearch.distribution.integ-test-zip", "opensearch", "0.0.404", "zip")
    with pytest.raises(DownloadError) as info:
        fetch_artifact(bogus, tmp_path / "artifacts")
    message = str(info.value)
    assert "org.opensearch.distribution.integ-test-zip:opensearch:0.0.404:zip" in message
    assert str(tmp_path / "artifacts") in message
    assert downloads_dir().name == "downloads"

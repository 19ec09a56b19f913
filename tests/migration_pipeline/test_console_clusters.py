"""``console clusters curl|cat-indices|connection-check`` and ``console backfill status`` as a user runs them:
a real process against the real sandbox (Elasticsearch 7.10 source, OpenSearch 2.19 target)."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from opensearchpy import OpenSearch

from migration_pipeline.sandbox import loader
from migration_pipeline.sandbox.processes import free_port
from migration_pipeline.sandbox.state import SandboxState
from tests.conftest import unique
from tests.workers.metadata.authproxy import basic_auth_proxy
from tests.workers.rfs.helpers import build_snapshot, options
from workers.rfs.coordination import WorkCoordinator
from workers.rfs.worker import run_shard
from workers.snapshot.blobstore import open_blob_store

CONSOLE = str(Path(sys.executable).parent / "console")


def console(*args: str) -> subprocess.CompletedProcess[str]:
    """Run ``console`` with the test's environment (monkeypatched variables included)."""
    return subprocess.run([CONSOLE, *args], capture_output=True, text=True, timeout=180,
                          env={**os.environ, "COLUMNS": "250"})


@pytest.fixture(autouse=True)
def no_active_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No workflow config is active unless a test makes one (the machine's own active config must not leak in)."""
    monkeypatch.setenv("MIGRATION_WORKFLOW_CONFIG", str(tmp_path / "no-such-workflow.yaml"))


def write_config(tmp_path: Path, source: str, target: str, *, auth: dict[str, Any] | None = None,
                 coordination_index: str | None = None) -> Path:
    """A valid workflow file for ``source`` and ``target`` (``auth`` on both), written under ``tmp_path``."""
    cluster_auth = auth or {"kind": "none"}
    config: dict[str, Any] = {
        "version": 1,
        "source": {"endpoint": source, "auth": cluster_auth, "timeout_s": 10},
        "target": {"endpoint": target, "auth": cluster_auth, "timeout_s": 10},
        "snapshot": {"repository": {"location": str(tmp_path / "repo")}, "existing": "snap"},
    }
    if coordination_index:
        config["backfill"] = {"coordination_index": coordination_index}
    path = tmp_path / f"{unique('workflow')}.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def _json(result: subprocess.CompletedProcess[str]) -> Any:
    assert result.stdout, result.stderr
    return json.loads(result.stdout)


# --- curl -------------------------------------------------------------------------------------------------------


def test_curl_get_on_both_sides_names_each_engine(sandbox: SandboxState) -> None:
    source = console("clusters", "curl", "source", "--", "/")
    assert source.returncode == 0, source.stderr
    assert _json(source)["version"]["number"] == "7.10.2"
    assert "local sandbox" in source.stderr  # no workflow config: the fallback is said out loud
    target = console("clusters", "curl", "target", "--", "/")
    assert target.returncode == 0, target.stderr
    assert _json(target)["version"]["distribution"] == "opensearch"
    assert target.stdout.startswith("{\n  "), "JSON answers are printed indented"


def test_curl_put_and_post_create_an_index_and_documents(sandbox: SandboxState, tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    target_url = sandbox.engines["target"].url
    config = write_config(tmp_path, sandbox.engines["source"].url, target_url)
    monkeypatch.setenv("MIGRATION_WORKFLOW_CONFIG", str(config))
    index = unique("curl")
    created = console("clusters", "curl", "target", "--", f"/{index}", "-X", "PUT",
                      "-d", '{"settings": {"number_of_shards": 2, "number_of_replicas": 0}}')
    assert created.returncode == 0, created.stderr
    assert _json(created)["acknowledged"] is True
    assert "local sandbox" not in created.stderr  # the config is active now
    client = OpenSearch(hosts=[target_url])
    assert client.indices.get_settings(index=index)[index]["settings"]["index"]["number_of_shards"] == "2"

    body = tmp_path / "doc.json"
    body.write_text('{"title": "from a file"}')
    posted = console("clusters", "curl", "target", "--", f"/{index}/_doc/one?refresh=true", "-d", f"@{body}")
    assert posted.returncode == 0, posted.stderr
    assert _json(posted)["result"] == "created"  # -d without -X is a POST, as in curl
    assert client.get(index=index, id="one")["_source"] == {"title": "from a file"}

    # Options before "--", a header, and a text (non-JSON) answer printed as it came.
    counted = console("clusters", "curl", "target", "-H", "Accept: text/plain", "--",
                      f"/_cat/indices/{index}?h=index,docs.count")
    assert counted.returncode == 0, counted.stderr
    assert counted.stdout.split() == [index, "1"]

    # The source too: PUT then POST a document, read it back.
    src_index = unique("curl-src")
    assert console("clusters", "curl", "source", "-X", "PUT", "--", f"/{src_index}").returncode == 0
    doc = console("clusters", "curl", "source", "--", f"/{src_index}/_doc?refresh=wait_for", "-XPOST",
                  "-d", '{"n": 7}')
    assert doc.returncode == 0, doc.stderr
    search = console("clusters", "curl", "source", "--", f"/{src_index}/_search", "-d",
                     '{"query": {"term": {"n": 7}}}', "-X", "GET")
    assert _json(search)["hits"]["total"]["value"] == 1


def test_curl_non_2xx_exits_1_with_the_status_on_stderr(sandbox: SandboxState) -> None:
    missing = unique("missing")
    result = console("clusters", "curl", "target", "--", f"/{missing}/_search")
    assert result.returncode == 1
    assert _json(result)["error"]["type"] == "index_not_found_exception"
    assert "HTTP 404" in result.stderr and sandbox.engines["target"].url in result.stderr
    head = console("clusters", "curl", "source", "-X", "HEAD", "--", f"/{missing}")
    assert head.returncode == 1 and head.stdout.strip() == "HTTP 404"


def test_curl_usage_errors_exit_2(sandbox: SandboxState) -> None:
    assert console("clusters", "curl", "middle", "--", "/").returncode == 2
    no_path = console("clusters", "curl", "source")
    assert no_path.returncode == 2 and "PATH" in no_path.stderr
    bad = console("clusters", "curl", "source", "--", "/", "--insecure")
    assert bad.returncode == 2 and "--insecure" in bad.stderr
    assert console("clusters", "curl", "source", "--", "/", "-X", "FETCH").returncode == 2


# --- cat-indices ------------------------------------------------------------------------------------------------


@pytest.mark.filterwarnings("ignore:index name:opensearchpy.exceptions.OpenSearchWarning")
def test_cat_indices_compares_source_and_target(sandbox: SandboxState) -> None:
    source_url, target_url = sandbox.engines["source"].url, sandbox.engines["target"].url
    only_source, both, differs = unique("cat-src"), unique("cat-both"), unique("cat-diff")
    dotted = "." + unique("cat-dot")
    loader.load(source_url, only_source, 30)
    for url in (source_url, target_url):
        loader.load(url, both, 20)
    loader.load(source_url, differs, 10)
    loader.load(target_url, differs, 9)
    loader.load(source_url, dotted, 5)

    result = console("clusters", "cat-indices", "--json")
    assert result.returncode == 0, result.stderr
    data = _json(result)
    rows = {r["index"]: r for r in data["indices"]}
    assert rows[only_source] == {"index": only_source, "source": 30, "target": None, "match": False}
    assert rows[both] == {"index": both, "source": 20, "target": 20, "match": True}
    assert rows[differs] == {"index": differs, "source": 10, "target": 9, "match": False}
    assert dotted not in rows and not any(name.startswith(".") for name in rows)
    assert data["source"]["version"] == "7.10.2" and data["target"]["engine"] == "opensearch"

    everything = {r["index"]: r for r in _json(console("clusters", "cat-indices", "--json", "--all"))["indices"]}
    assert everything[dotted]["source"] == 5

    table = console("clusters", "cat-indices")
    assert table.returncode == 0, table.stderr
    lines = {line.split()[1]: line.split() for line in table.stdout.splitlines()
             if line.startswith("│") and len(line.split()) > 5}
    assert lines[only_source][2:7] == ["│", "30", "│", "—", "│"] and lines[only_source][7] == "no"
    assert lines[both][7] == "yes" and lines[differs][7] == "no"


# --- connection-check -------------------------------------------------------------------------------------------


def test_connection_check_passes_for_the_sandbox(sandbox: SandboxState, tmp_path: Path) -> None:
    result = console("clusters", "connection-check", "--json")
    assert result.returncode == 0, result.stderr
    data = _json(result)
    assert data["ok"] is True
    by_role = {c["role"]: c for c in data["clusters"]}
    assert by_role["source"]["engine"] == "elasticsearch" and by_role["source"]["version"] == "7.10.2"
    assert by_role["target"]["engine"] == "opensearch" and by_role["target"]["reachable"] is True
    assert by_role["target"]["auth"] == "none" and by_role["target"]["tls_verify"] is True
    assert by_role["source"]["latency_ms"] > 0 and by_role["source"]["health"] in ("green", "yellow")

    config = write_config(tmp_path, sandbox.engines["source"].url, sandbox.engines["target"].url)
    table = console("clusters", "connection-check", "--config", str(config))
    assert table.returncode == 0, table.stderr
    assert "elasticsearch 7.10.2" in table.stdout and "opensearch 2.19" in table.stdout
    assert str(config) in table.stdout


def test_connection_check_fails_for_a_closed_port(sandbox: SandboxState, tmp_path: Path) -> None:
    closed = f"http://127.0.0.1:{free_port()}"
    config = write_config(tmp_path, sandbox.engines["source"].url, closed)
    result = console("clusters", "connection-check", "--config", str(config))
    assert result.returncode == 1
    assert f"target cluster {closed}: cannot connect: connection refused" in result.stderr
    data = _json(console("clusters", "connection-check", "--config", str(config), "--json"))
    by_role = {c["role"]: c for c in data["clusters"]}
    assert data["ok"] is False and by_role["source"]["error"] is None and by_role["target"]["reachable"] is False

    # The other commands fail the same way, naming the endpoint.
    cat = console("clusters", "cat-indices", "--config", str(config))
    assert cat.returncode == 1 and closed in cat.stderr
    curl = console("clusters", "curl", "target", "--config", str(config), "--", "/")
    assert curl.returncode == 1 and closed in curl.stderr and "connection refused" in curl.stderr


def test_connection_check_names_an_unset_password_variable(sandbox: SandboxState, tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    variable = "CONSOLE_TEST_PW_" + unique("v").replace("-", "_").upper()
    monkeypatch.delenv(variable, raising=False)
    config = write_config(tmp_path, sandbox.engines["source"].url, sandbox.engines["target"].url,
                          auth={"kind": "basic", "username": "admin", "password_env": variable})
    result = console("clusters", "connection-check", "--config", str(config))
    assert result.returncode == 1
    assert f"source cluster {sandbox.engines['source'].url}: environment variable {variable}" in result.stderr
    assert f"target cluster {sandbox.engines['target'].url}: environment variable {variable}" in result.stderr


def test_secrets_are_never_printed(sandbox: SandboxState, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The sandbox has no security plugin: it ignores the Authorization header, so every command succeeds with it.
    secret = "s3cr3t-" + unique("pw")
    monkeypatch.setenv("CONSOLE_TEST_PASSWORD", secret)
    config = write_config(tmp_path, sandbox.engines["source"].url, sandbox.engines["target"].url,
                          auth={"kind": "basic", "username": "operator", "password_env": "CONSOLE_TEST_PASSWORD"})
    monkeypatch.setenv("MIGRATION_WORKFLOW_CONFIG", str(config))
    encoded = base64.b64encode(f"operator:{secret}".encode()).decode()
    runs = [
        (console("clusters", "connection-check"), 0),
        (console("clusters", "connection-check", "--json"), 0),
        (console("clusters", "curl", "source", "--verbose", "--", "/"), 0),
        (console("clusters", "curl", "target", "-v", "-H", f"Authorization: Basic {encoded}", "--", "/"), 0),
        (console("clusters", "curl", "target", "-v", "--", f"/{unique('nope')}"), 1),
        (console("clusters", "cat-indices", "--json"), 0),
        (console("backfill", "status", "--json", "--coordination-index", unique(".mws")), 0),
        (console("--debug", "clusters", "curl", "target", "--", "/"), 0),
    ]
    for result, code in runs:
        assert result.returncode == code, (result.args, result.stderr)
        for text in (result.stdout, result.stderr):
            assert secret not in text and encoded not in text, result.args
    verbose = runs[3][0].stderr
    assert "> authorization: <redacted>" in verbose
    assert "> auth: basic (operator, password from $CONSOLE_TEST_PASSWORD); TLS verify on" in verbose
    assert "basic (operator, password from $CONSOLE_TEST_PASSWORD)" in runs[1][0].stdout


def test_basic_auth_is_applied_and_a_wrong_password_is_a_401(sandbox: SandboxState, tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    # A proxy that demands basic auth in front of the real target: curl only gets through with the right password.
    secret = unique("right")
    monkeypatch.setenv("CONSOLE_TEST_PASSWORD", secret)
    auth = {"kind": "basic", "username": "operator", "password_env": "CONSOLE_TEST_PASSWORD"}
    with basic_auth_proxy(sandbox.engines["target"].url, "operator", secret) as proxy:
        config = write_config(tmp_path, sandbox.engines["source"].url, proxy, auth=auth)
        monkeypatch.setenv("MIGRATION_WORKFLOW_CONFIG", str(config))
        index = unique("authed")
        put = console("clusters", "curl", "target", "-X", "PUT", "--", f"/{index}")
        assert put.returncode == 0, put.stderr
        assert OpenSearch(hosts=[sandbox.engines["target"].url]).indices.exists(index=index)
        assert console("clusters", "connection-check").returncode == 0

        monkeypatch.setenv("CONSOLE_TEST_PASSWORD", "wrong-" + secret)
        check = console("clusters", "connection-check")
        assert check.returncode == 1
        assert f"target cluster {proxy}: 401 unauthorized (check the user and $CONSOLE_TEST_PASSWORD)" in check.stderr
        denied = console("clusters", "curl", "target", "--", "/")
        assert denied.returncode == 1 and "HTTP 401" in denied.stderr
        for text in (check.stdout, check.stderr, denied.stdout, denied.stderr):
            assert secret not in text


# --- backfill status --------------------------------------------------------------------------------------------


def test_backfill_status_lists_completed_shards(sandbox: SandboxState, tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    node, target = sandbox.engines["source"], sandbox.engines["target"].url
    snap = build_snapshot(node.url, node.repo_path, docs=120, shards=2)
    opts = options(target, tmp_path)
    store = open_blob_store(snap.repo_uri)
    results = [run_shard(store, snap.snapshot, snap.index, s, opts) for s in range(snap.shards)]
    assert all(r.status == "completed" for r in results)
    # Status reads by search, which sees what the last refresh published; the worker's writes are not refreshed.
    OpenSearch(hosts=[target]).indices.refresh(index=opts.coordination_index)

    result = console("backfill", "status", "--json", "--coordination-index", opts.coordination_index)
    assert result.returncode == 0, result.stderr
    data = _json(result)
    assert data["exists"] is True and data["coordination_index"] == opts.coordination_index
    shards = [(s["snapshot"], s["index"], s["shard"], s["state"], s["docs_written"]) for s in data["shards"]]
    assert shards == [(snap.snapshot, snap.index, r.shard, "completed", r.docs_written) for r in results]
    assert data["totals"]["completed"] == 2 and data["totals"]["docs_written"] == len(snap.expected) == 120
    assert all(s["lease_owner"] is None and s["updated"] for s in data["shards"])

    # A shard being worked on, and one whose worker's lease ran out.
    client = OpenSearch(hosts=[target])
    WorkCoordinator(client, opts.coordination_index, "worker-a", 600, "other-snap", "logs", 0).acquire()
    WorkCoordinator(client, opts.coordination_index, "worker-b", 0.001, "other-snap", "logs", 1).acquire()
    client.indices.refresh(index=opts.coordination_index)
    other = _json(console("backfill", "status", "--json", "--coordination-index", opts.coordination_index,
                          "--snapshot", "other-snap"))
    assert [(s["shard"], s["state"], s["lease_owner"]) for s in other["shards"]] == [
        (0, "in-progress", "worker-a"), (1, "lease-expired", "worker-b")]
    assert other["totals"] == {"shards": 2, "completed": 0, "in-progress": 1, "lease-expired": 1,
                               "docs_written": 0, "bytes_written": 0}

    # The human table, with the coordination index named by the active workflow config.
    config = write_config(tmp_path, node.url, target, coordination_index=opts.coordination_index)
    monkeypatch.setenv("MIGRATION_WORKFLOW_CONFIG", str(config))
    table = console("backfill", "status", "--snapshot", snap.snapshot)
    assert table.returncode == 0, table.stderr
    assert table.stdout.count("completed") >= 2 and snap.index in table.stdout
    assert "2 shards: 2 completed, 0 in progress, 0 lease expired; 120 documents" in table.stdout


def test_backfill_status_before_any_worker_ran(sandbox: SandboxState) -> None:
    index = unique(".mws-none")
    result = console("backfill", "status", "--coordination-index", index)
    assert result.returncode == 0, result.stderr
    assert f"coordination index {index} does not exist on the target" in result.stdout
    data = _json(console("backfill", "status", "--json", "--coordination-index", index))
    assert data["exists"] is False and data["shards"] == [] and data["totals"]["shards"] == 0

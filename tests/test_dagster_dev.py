"""A real, headless ``dagster dev`` on a free loopback port: server info, GraphQL, clean stop."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from migration_pipeline.sandbox.processes import free_port

REPO = Path(__file__).resolve().parent.parent

ASSETS_QUERY = """
query { assetNodes { assetKey { path } groupName isObservable } }
"""


def _get(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=5) as resp:
        return resp.read()


def _graphql(base: str, query: str) -> dict:
    req = urllib.request.Request(f"{base}/graphql", data=json.dumps({"query": query}).encode(),
                                 headers={"content-type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as resp:
        return json.loads(resp.read())


def test_dagster_dev_serves_assets(tmp_path: Path) -> None:
    port = free_port()
    env = dict(os.environ, DAGSTER_HOME=str(tmp_path))
    dagster = Path(sys.executable).parent / "dagster"
    log = open(tmp_path / "dev.log", "wb")  # noqa: SIM115 - closed in the finally below, after the stop
    proc = subprocess.Popen([str(dagster), "dev", "-w", "workspace.yaml", "-h", "127.0.0.1", "-p", str(port)],
                            cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        info = None
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                info = json.loads(_get(f"{base}/server_info"))
                break
            except OSError:
                time.sleep(0.5)
        assert info is not None, (tmp_path / "dev.log").read_text()[-3000:]
        assert "dagster_webserver_version" in info
        nodes: list[dict] = []
        while time.monotonic() < deadline:  # the code server may still be loading
            data = _graphql(base, ASSETS_QUERY)
            nodes = data.get("data", {}).get("assetNodes") or []
            if nodes:
                break
            time.sleep(1)
        by_key = {"/".join(n["assetKey"]["path"]): n for n in nodes}
        assert {"source_cluster", "target_cluster"} <= by_key.keys()
        assert by_key["source_cluster"]["groupName"] == "migration"
        assert by_key["source_cluster"]["isObservable"] is True
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        log.close()
    assert proc.returncode is not None
    # Nothing of the process group is left behind once its children have wound down.
    leftovers = ["?"]
    deadline = time.monotonic() + 30
    while leftovers and time.monotonic() < deadline:
        leftovers = subprocess.run(["pgrep", "-g", str(proc.pid)], capture_output=True, text=True).stdout.split()
        time.sleep(0.5)
    assert leftovers == []

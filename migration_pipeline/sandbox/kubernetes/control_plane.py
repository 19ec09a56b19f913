"""A single-node Kubernetes cluster on loopback: etcd, kube-apiserver, kube-controller-manager, kube-scheduler built
from source (``build``), and the sandbox's node agent (``node_agent``), which runs pods' commands as local processes.

``start(folder)`` brings it up and returns a ``KubernetesCluster`` (kubeconfig paths, PIDs); ``stop`` takes it down
in the order that does not hang (node, scheduler, controller-manager, API server, then etcd).
"""

from __future__ import annotations

import json
import secrets
import shutil
import ssl
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml

from migration_pipeline.sandbox.errors import StartupError
from migration_pipeline.sandbox.kubernetes.build import KUBERNETES_VERSION, ControlPlaneBinaries, ensure_binaries
from migration_pipeline.sandbox.kubernetes.pki import SERVICE_CIDR, make_cluster_pki
from migration_pipeline.sandbox.paths import ensure_dir
from migration_pipeline.sandbox.processes import free_port, runs_from, spawn, stop_group, tail

NODE_NAME = "sandbox-node"
NODE_AGENT_MODULE = "migration_pipeline.sandbox.kubernetes.node_agent"
# The order of ``stop``: the API server retries etcd forever once etcd is gone, so etcd goes last.
COMPONENTS = ("node", "scheduler", "controller-manager", "apiserver", "etcd")
Progress = Callable[[str], None]


@dataclass
class KubernetesCluster:
    """A running sandbox cluster, as recorded in the sandbox state."""

    version: str
    folder: str
    server: str
    kubeconfig: str
    node_name: str
    pids: dict[str, int] = field(default_factory=dict)

    def alive(self) -> bool:
        """True while the API server runs (the other parts are reported one by one by ``components``)."""
        return runs_from(self.pids.get("apiserver", 0), self.folder)

    def components(self) -> dict[str, bool]:
        return {name: runs_from(pid, self.folder) for name, pid in self.pids.items()}

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def log(self, component: str) -> Path:
        return Path(self.folder) / "logs" / f"{component}.log"


def _kubeconfig(path: Path, server: str, ca: Path, user: str, token: str) -> Path:
    doc = {
        "apiVersion": "v1", "kind": "Config",
        "clusters": [{"name": "sandbox", "cluster": {"server": server, "certificate-authority": str(ca)}}],
        "users": [{"name": user, "user": {"token": token}}],
        "contexts": [{"name": "sandbox", "context": {"cluster": "sandbox", "user": user, "namespace": "default"}}],
        "current-context": "sandbox",
    }
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    path.chmod(0o600)
    return path


def _get(url: str, token: str, ca: Path, timeout: float = 3.0) -> tuple[int, bytes]:
    ctx = ssl.create_default_context(cafile=str(ca))
    req = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})
    try:
        with urllib.request.urlopen(req, timeout=timeout, context=ctx) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def _wait(what: str, check: Callable[[], bool], timeout_s: float, pid: int, log: Path) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if pid and not runs_from(pid, str(log.parent.parent)):
            raise StartupError(f"kubernetes: {what} exited while starting; its log ({log}) ends with:\n{tail(log)}")
        try:
            if check():
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise StartupError(f"kubernetes: {what} not ready after {timeout_s:.0f} s; its log ({log}) ends with:\n"
                       f"{tail(log)}")


def _spawn(cluster: KubernetesCluster, name: str, command: list[str]) -> int:
    folder = Path(cluster.folder)
    pid = spawn(command, env={"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": str(folder)}, cwd=folder,
                log_file=cluster.log(name))
    cluster.pids[name] = pid
    return pid


def start(folder: Path, progress: Progress = lambda _: None, timeout_s: float = 90.0) -> KubernetesCluster:
    """Build the binaries if needed, then start the control plane and a node in ``folder`` (emptied first)."""
    binaries = ensure_binaries(progress)
    if folder.exists():
        shutil.rmtree(folder)
    for sub in ("logs", "etcd", "node"):
        ensure_dir(folder / sub, 0o700)
    pki = make_cluster_pki(folder / "pki")
    tokens = {user: secrets.token_urlsafe(32) for user in ("admin", "controller-manager", "scheduler", "node")}
    # Static tokens: user, uid, groups. The node's identity is what the Node authorizer expects of a kubelet.
    identities = {"admin": ("sandbox-admin", "system:masters"),
                  "controller-manager": ("system:kube-controller-manager", ""),
                  "scheduler": ("system:kube-scheduler", ""),
                  "node": (f"system:node:{NODE_NAME}", "system:nodes")}
    token_file = folder / "pki" / "tokens.csv"
    token_file.write_text("".join(f'{tokens[k]},{user},{user},"{groups}"\n'
                                  for k, (user, groups) in identities.items()))
    token_file.chmod(0o600)
    api_port = free_port()
    server = f"https://127.0.0.1:{api_port}"
    configs = {k: _kubeconfig(folder / f"{k}.kubeconfig", server, pki.ca, identities[k][0], tokens[k])
               for k in tokens}
    cluster = KubernetesCluster(KUBERNETES_VERSION, str(folder), server, str(configs["admin"]), NODE_NAME)
    started = time.monotonic()
    try:
        _start_etcd(cluster, binaries, timeout_s)
        progress("kubernetes: etcd ready")
        _start_apiserver(cluster, binaries, pki.folder, token_file, api_port, tokens["admin"], timeout_s)
        progress(f"kubernetes: API server ready at {server}")
        for name, kubeconfig in (("controller-manager", configs["controller-manager"]),
                                 ("scheduler", configs["scheduler"])):
            _spawn(cluster, name, _controller_command(binaries, name, kubeconfig, pki.folder))
        node_port = free_port()
        _spawn(cluster, "node", [sys.executable, "-P", "-m", NODE_AGENT_MODULE, "--kubeconfig", str(configs["node"]),
                                 "--node-name", NODE_NAME, "--root", str(folder / "node"), "--port", str(node_port),
                                 "--tls-cert", str(pki.file("kubelet.pem")), "--tls-key",
                                 str(pki.file("kubelet-key.pem")), "--client-ca", str(pki.ca)])
        _wait_ready(cluster, tokens["admin"], pki.ca, timeout_s)
    except BaseException:
        stop(cluster)
        raise
    progress(f"kubernetes: node {NODE_NAME} ready, cluster up in {time.monotonic() - started:.1f} s "
             f"(kubeconfig {cluster.kubeconfig})")
    return cluster


def _start_etcd(cluster: KubernetesCluster, binaries: ControlPlaneBinaries, timeout_s: float) -> None:
    folder = Path(cluster.folder)
    client, peer = free_port(), free_port()
    pid = _spawn(cluster, "etcd", [
        str(binaries.path("etcd")), "--name", "sandbox", "--data-dir", str(folder / "etcd"),
        "--listen-client-urls", f"http://127.0.0.1:{client}", "--advertise-client-urls", f"http://127.0.0.1:{client}",
        "--listen-peer-urls", f"http://127.0.0.1:{peer}", "--initial-advertise-peer-urls", f"http://127.0.0.1:{peer}",
        "--initial-cluster", f"sandbox=http://127.0.0.1:{peer}",
        # Test data only: no fsync makes every API write ~10x faster on a shared disk.
        "--unsafe-no-fsync", "--log-level", "warn",
    ])
    (folder / "etcd.url").write_text(f"http://127.0.0.1:{client}")

    def healthy() -> bool:
        with urllib.request.urlopen(f"http://127.0.0.1:{client}/health", timeout=2) as resp:
            return bool(json.loads(resp.read()).get("health") == "true")

    _wait("etcd", healthy, timeout_s, pid, cluster.log("etcd"))


def _start_apiserver(cluster: KubernetesCluster, binaries: ControlPlaneBinaries, pki: Path, token_file: Path,
                     port: int, admin_token: str, timeout_s: float) -> None:
    folder = Path(cluster.folder)
    pid = _spawn(cluster, "apiserver", [
        str(binaries.path("kube-apiserver")),
        "--etcd-servers", (folder / "etcd.url").read_text(),
        "--bind-address", "127.0.0.1", "--secure-port", str(port),
        # A loopback advertise address is refused by the endpoint reconciler; one server needs none.
        "--advertise-address", "127.0.0.1", "--endpoint-reconciler-type", "none",
        "--tls-cert-file", str(pki / "apiserver.pem"), "--tls-private-key-file", str(pki / "apiserver-key.pem"),
        "--client-ca-file", str(pki / "ca.pem"), "--token-auth-file", str(token_file),
        "--authorization-mode", "Node,RBAC", "--enable-admission-plugins", "NodeRestriction",
        "--service-account-issuer", "https://kubernetes.default.svc.cluster.local",
        "--service-account-key-file", str(pki / "sa.pem"), "--service-account-signing-key-file",
        str(pki / "sa-key.pem"), "--service-cluster-ip-range", SERVICE_CIDR,
        "--kubelet-client-certificate", str(pki / "apiserver-kubelet-client.pem"),
        "--kubelet-client-key", str(pki / "apiserver-kubelet-client-key.pem"),
        "--kubelet-certificate-authority", str(pki / "ca.pem"),
        # Node names are not in any DNS here: reach the node agent at the address it registers.
        "--kubelet-preferred-address-types", "InternalIP",
        "--allow-privileged=true", "--profiling=false", "-v", "1",
    ])

    def ready() -> bool:
        return _get(f"{cluster.server}/readyz", admin_token, pki / "ca.pem")[0] == 200

    _wait("kube-apiserver", ready, timeout_s, pid, cluster.log("apiserver"))


def _controller_command(binaries: ControlPlaneBinaries, name: str, kubeconfig: Path, pki: Path) -> list[str]:
    common = ["--kubeconfig", str(kubeconfig), "--authentication-kubeconfig", str(kubeconfig),
              "--authorization-kubeconfig", str(kubeconfig), "--leader-elect=false",
              "--bind-address", "127.0.0.1", "--secure-port", str(free_port()), "-v", "1"]
    if name == "scheduler":
        return [str(binaries.path("kube-scheduler")), *common]
    return [str(binaries.path("kube-controller-manager")), *common,
            # Each controller acts as its own service account, with the bootstrap roles the API server made.
            "--use-service-account-credentials=true",
            "--service-account-private-key-file", str(pki / "sa-key.pem"), "--root-ca-file", str(pki / "ca.pem"),
            "--cluster-signing-cert-file", str(pki / "ca.pem"), "--cluster-signing-key-file",
            str(pki / "ca-key.pem")]


def _wait_ready(cluster: KubernetesCluster, token: str, ca: Path, timeout_s: float) -> None:
    """Ready for pods: the node reports Ready and the default namespace has its service account (pods are refused
    without it)."""

    def node_ready() -> bool:
        code, body = _get(f"{cluster.server}/api/v1/nodes/{cluster.node_name}", token, ca)
        if code != 200:
            return False
        conditions = json.loads(body).get("status", {}).get("conditions", [])
        return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)

    def default_account() -> bool:
        return _get(f"{cluster.server}/api/v1/namespaces/default/serviceaccounts/default", token, ca)[0] == 200

    for what, check, component in (("the node agent", node_ready, "node"),
                                   ("the controller-manager (default service account)", default_account,
                                    "controller-manager")):
        _wait(what, check, timeout_s, cluster.pids[component], cluster.log(component))


def stop(cluster: KubernetesCluster, timeout_s: float = 20.0) -> list[str]:
    """Stop every component in order; returns the ones that were running."""
    stopped = []
    for name in COMPONENTS:
        pid = cluster.pids.get(name)
        if pid and runs_from(pid, cluster.folder) and stop_group(pid, timeout_s):
            stopped.append(f"kubernetes {name} (pid {pid})")
    return stopped

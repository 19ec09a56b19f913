"""The sandbox's node agent: a stand-in for a kubelet and container runtime that runs pods' commands as processes.

    python -m migration_pipeline.sandbox.kubernetes.node_agent --kubeconfig PATH --node-name NAME --root DIR \\
        --port PORT --tls-cert CERT.pem --tls-key KEY.pem [--client-ca CA.pem]

It registers the Node, renews its Lease every 10 s, watches the pods bound to it and runs each one in its own thread
(``node_agent_pod``): every container's ``command`` + ``args`` as a local process in the project's Python
environment (images are ignored; a container without ``command`` fails the pod with reason ``NoCommand``), with the
pod's environment, volumes bind-mounted at their mount paths in a private mount namespace (``unshare``, as root),
and its output in a log file served as the kubelet's ``/containerLogs`` API over HTTPS (``node_agent_logs``), which
is what ``kubectl logs`` and ``PipesK8sClient`` read through the API server.

Not done here, on purpose or for lack of a runtime: liveness and startup probes (ignored), resource limits and
``resourceFieldRef`` (nothing to enforce them), sidecar init containers (``restartPolicy: Always`` on an init container
is run as an ordinary init container), pod networking (every pod is 127.0.0.1; ports are the machine's), exec/attach/
port-forward, image pulls, and users/security contexts (processes run as the agent's user). A mount point that does
not exist is created on the machine's own filesystem (the namespace shares it), e.g. the empty
/var/run/secrets/kubernetes.io/serviceaccount of the kube-api-access volume every pod gets.

On SIGTERM it stops every process it started (SIGTERM to each process group, SIGKILL after at most 10 s) and exits,
leaving the pod objects as they are: the cluster is going away with it.
"""

from __future__ import annotations

import argparse
import os
import platform
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any

from migration_pipeline.sandbox.kubernetes.node_agent_api import NodeApi, is_status
from migration_pipeline.sandbox.kubernetes.node_agent_logs import LogServer, LogSource, tls_context
from migration_pipeline.sandbox.kubernetes.node_agent_pod import PodWorker, say
from migration_pipeline.sandbox.kubernetes.node_agent_status import (
    node_labels,
    node_status,
    now_micro,
    now_rfc3339,
)

Doc = dict[str, Any]
HEARTBEAT_SECONDS = 10.0
LEASE_SECONDS = 40
SHUTDOWN_GRACE_SECONDS = 10
TERMINAL = ("Succeeded", "Failed")


def machine_arch() -> str:
    machine = platform.machine().lower()
    return {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm"}.get(machine, machine)


def read_text(path: str) -> str:
    try:
        with open(path) as handle:
            return handle.read().strip()
    except OSError:
        return ""


def memory_kib() -> int:
    with open("/proc/meminfo") as meminfo:
        for line in meminfo:
            if line.startswith("MemTotal:"):
                return int(line.split()[1])
    return 0


class NodeAgent:
    """The node: its registration and heartbeat, the pod watch, the pods' workers and the log server."""

    def __init__(self, api: NodeApi, name: str, root: Path, port: int) -> None:
        self.api, self.name, self.root, self.port = api, name, root, port
        self.stopping = threading.Event()
        self._workers: dict[str, PodWorker] = {}  # by pod uid
        self._ended: set[str] = set()  # uids whose worker finished: late watch events must not start them again
        self._lock = threading.Lock()
        self._since = now_rfc3339()
        self._node_uid: str | None = None

    # ---- the node ---------------------------------------------------------------------------------------------

    def _status(self) -> Doc:
        return node_status(name=self.name, port=self.port, cpus=os.cpu_count() or 1, memory_kib=memory_kib(),
                           heartbeat=now_rfc3339(), since=self._since, arch=machine_arch(),
                           kernel=platform.release(), boot_id=read_text("/proc/sys/kernel/random/boot_id"),
                           machine_id=read_text("/etc/machine-id"))

    def register(self) -> None:
        """Create the Node (or take over one of this name) and post its status; retried until it works."""
        labels = node_labels(self.name, machine_arch())
        while not self.stopping.is_set():
            try:
                node = self.api.read_node(self.name)
                if node is None:
                    node = self.api.create_node({"apiVersion": "v1", "kind": "Node",
                                                 "metadata": {"name": self.name, "labels": labels}})
                else:
                    self.api.patch_node_labels(self.name, labels)
                self._node_uid = node["metadata"]["uid"]
                self.api.patch_node_status(self.name, self._status())
                say(f"node {self.name} registered (log API on port {self.port})")
                return
            except Exception as exc:
                say(f"registering node {self.name} failed, retrying: {exc}")
                self.stopping.wait(2.0)

    def _lease(self) -> Doc:
        meta: Doc = {"name": self.name, "namespace": "kube-node-lease"}
        if self._node_uid:  # as a kubelet does: the lease goes with the Node
            meta["ownerReferences"] = [{"apiVersion": "v1", "kind": "Node", "name": self.name,
                                        "uid": self._node_uid}]
        return {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": meta,
                "spec": {"holderIdentity": self.name, "leaseDurationSeconds": LEASE_SECONDS,
                         "renewTime": now_micro()}}

    def heartbeat(self) -> None:
        """Lease and Ready heartbeat every 10 s: the node lifecycle controller evicts pods after ~40 s without."""
        while not self.stopping.is_set():
            try:
                self.api.renew_lease(self._lease())
                self.api.patch_node_status(self.name, self._status())
                delay = HEARTBEAT_SECONDS
            except Exception as exc:
                say(f"heartbeat failed, retrying: {exc}")
                delay = 2.0
            self.stopping.wait(delay)

    # ---- pods -------------------------------------------------------------------------------------------------

    def watch(self) -> None:
        """List then watch the node's pods; any error or expiry (410 Gone) leads to a fresh list."""
        while not self.stopping.is_set():
            try:
                listing = self.api.list_pods(self.name)
                self._reconcile(listing.get("items", []))
                version = listing["metadata"]["resourceVersion"]
                while not self.stopping.is_set():
                    version = self._watch_once(version)
            except _Relist:
                continue
            except Exception as exc:
                if not self.stopping.is_set():
                    say(f"pod watch failed, re-listing: {exc if not is_status(exc, 410) else '410 Gone'}")
                    self.stopping.wait(1.0)

    def _watch_once(self, version: str) -> str:
        for event in self.api.watch_pods(self.name, version):
            kind, obj = event.get("type"), event.get("object", {})
            if kind == "ERROR":
                raise _Relist()
            version = obj.get("metadata", {}).get("resourceVersion", version)
            if kind in ("ADDED", "MODIFIED"):
                self._handle(obj)
            elif kind == "DELETED":
                self._gone(obj["metadata"]["uid"])
        return version

    def _reconcile(self, pods: list[Doc]) -> None:
        present = {p["metadata"]["uid"] for p in pods}
        for pod in pods:
            self._handle(pod)
        with self._lock:
            missing = [uid for uid in self._workers if uid not in present]
        for uid in missing:
            self._gone(uid)

    def _handle(self, pod: Doc) -> None:
        uid = pod["metadata"]["uid"]
        with self._lock:
            worker = self._workers.get(uid)
            runnable = pod.get("status", {}).get("phase") not in TERMINAL and uid not in self._ended
            if worker is None and runnable and not self.stopping.is_set():
                worker = self._workers[uid] = PodWorker(pod, self.api, self.root)
                say(f"pod {worker.label}: accepted")
                worker.start()
        if worker is not None:
            worker.update(pod)  # a pod first seen with a deletionTimestamp is stopped at once
        elif pod["metadata"].get("deletionTimestamp"):
            self._delete_terminal(pod)

    def _delete_terminal(self, pod: Doc) -> None:
        """A finished pod this agent is not running (e.g. from before a restart): just finish its deletion."""
        meta = pod["metadata"]
        try:
            self.api.delete_pod(meta["namespace"], meta["name"], meta["uid"])
        except Exception as exc:
            say(f"pod {meta['namespace']}/{meta['name']}: delete failed: {exc}")

    def _gone(self, uid: str) -> None:
        """The pod object is gone: its processes must not outlive it."""
        with self._lock:
            worker = self._workers.pop(uid, None)
            self._ended.add(uid)
        if worker is not None:
            worker.stop(0, gone=True)

    def forget_finished(self) -> None:
        with self._lock:
            for uid in [u for u, w in self._workers.items() if not w.is_alive()]:
                del self._workers[uid]
                self._ended.add(uid)

    def locate(self, namespace: str, pod: str, container: str, previous: bool) -> LogSource | str:
        """The log the API server asks for; a pod no longer running here may still have its files."""
        self.forget_finished()
        with self._lock:
            workers = [w for w in self._workers.values() if (w.namespace, w.pod_name) == (namespace, pod)]
        if workers:
            return workers[-1].log_source(container, previous)
        name = f"{container}.previous.log" if previous else f"{container}.log"
        files = sorted((self.root / "pods").glob(f"{namespace}_{pod}_*/{name}"), key=lambda p: p.stat().st_mtime)
        if files:
            return LogSource(files[-1], lambda: True)
        return f'pod "{pod}" in namespace "{namespace}" not found on node {self.name}'

    def shutdown(self) -> None:
        """Stop every pod's processes in parallel; the pod objects stay (the cluster is stopping too)."""
        self.stopping.set()
        with self._lock:
            workers = list(self._workers.values())
        for worker in workers:
            worker.stop(SHUTDOWN_GRACE_SECONDS, shutdown=True)
        deadline = time.monotonic() + SHUTDOWN_GRACE_SECONDS + 5
        for worker in workers:
            worker.join(max(0.0, deadline - time.monotonic()))


class _Relist(Exception):
    """The watch reported an error event (410 Gone, typically): list again."""


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="node_agent", description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--kubeconfig", required=True, help="the node's credentials (system:node:NAME)")
    parser.add_argument("--node-name", required=True)
    parser.add_argument("--root", required=True, type=Path, help="folder for pods' logs, volumes and temp files")
    parser.add_argument("--port", required=True, type=int, help="HTTPS port of the log API on 127.0.0.1")
    parser.add_argument("--tls-cert", required=True)
    parser.add_argument("--tls-key", required=True)
    parser.add_argument("--client-ca", help="CA of the API server's client certificate (checked when given)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    (args.root / "pods").mkdir(parents=True, exist_ok=True)
    api = NodeApi(args.kubeconfig)
    agent = NodeAgent(api, args.node_name, args.root.resolve(), args.port)
    server = LogServer(args.port, tls_context(args.tls_cert, args.tls_key, args.client_ca), agent.locate)
    server.start()

    def on_signal(signum: int, _frame: object) -> None:
        agent.stopping.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    say(f"starting node {args.node_name} against {api.server}")
    agent.register()
    threading.Thread(target=agent.heartbeat, name="heartbeat", daemon=True).start()
    threading.Thread(target=agent.watch, name="pod-watch", daemon=True).start()
    while not agent.stopping.wait(60.0):
        agent.forget_finished()
    say("stopping: ending every pod's processes")
    agent.shutdown()
    server.stop()
    say("stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())

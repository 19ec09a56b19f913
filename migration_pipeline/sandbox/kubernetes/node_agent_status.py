"""The status documents the node agent writes: a pod's ``status`` and its Node's, built from plain values.

Pure functions, so what ``kubectl`` and ``PipesK8sClient`` read can be tested without a cluster.
"""

from __future__ import annotations

import re
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

Doc = dict[str, Any]
NODE_IP = "127.0.0.1"
KUBELET_VERSION = "v1.37.2"
RUNTIME_VERSION = "sandbox-process://1"


def now_rfc3339() -> str:
    """Seconds precision, as metav1.Time serialises."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def now_micro() -> str:
    """metav1.MicroTime, for Lease renewals."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def rfc3339_nano(ns: int | None = None) -> str:
    """Fixed-width RFC3339Nano: log readers (PipesK8sClient) compare timestamp lengths to find line starts."""
    ns = time.time_ns() if ns is None else ns
    seconds, nanos = divmod(ns, 1_000_000_000)
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S") + f".{nanos:09d}Z"


def parse_rfc3339(text: str) -> float:
    """Epoch seconds of an RFC3339 time (any fraction, Z or offset)."""
    text = text.strip()
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    match = re.fullmatch(r"([^.]+)\.(\d+)(.*)", text)
    if match:  # Python's parser takes at most microseconds; the fraction is added separately
        main, digits, tz = match.groups()
        return datetime.fromisoformat(main + tz).timestamp() + float("0." + digits)
    return datetime.fromisoformat(text).timestamp()


# ---- containers ---------------------------------------------------------------------------------------------------

@dataclass
class ContainerView:
    """What the agent knows of one container, in the terms of a ContainerStatus."""

    name: str
    image: str
    pid: int | None = None
    started_at: str | None = None
    finished_at: str | None = None
    exit_code: int | None = None
    signal_reason: str | None = None  # reason override for a killed container
    waiting_reason: str = "ContainerCreating"
    waiting_message: str | None = None
    ready: bool = False
    backing_off: bool = False  # exited, to be restarted after a back-off (CrashLoopBackOff)
    restart_count: int = 0
    last_state: Doc = field(default_factory=dict)

    @property
    def running(self) -> bool:
        return self.pid is not None and self.exit_code is None and self.started_at is not None


def terminated_state(exit_code: int, started_at: str | None, finished_at: str | None, pid: int | None,
                     reason: str | None = None) -> Doc:
    state: Doc = {"exitCode": exit_code, "reason": reason or ("Completed" if exit_code == 0 else "Error"),
                  "startedAt": started_at, "finishedAt": finished_at}
    if pid is not None:
        state["containerID"] = f"sandbox://{pid}"
    return {"terminated": state}


def container_state(view: ContainerView) -> Doc:
    if view.backing_off:
        return {"waiting": {"reason": "CrashLoopBackOff", "message": view.waiting_message or ""}}
    if view.exit_code is not None:
        return terminated_state(view.exit_code, view.started_at, view.finished_at, view.pid, view.signal_reason)
    if view.running:
        return {"running": {"startedAt": view.started_at}}
    waiting: Doc = {"reason": view.waiting_reason}
    if view.waiting_message:
        waiting["message"] = view.waiting_message
    return {"waiting": waiting}


def container_status(view: ContainerView) -> Doc:
    status: Doc = {
        "name": view.name,
        "image": view.image,
        "imageID": "",
        "state": container_state(view),
        "lastState": view.last_state,
        "ready": view.ready and view.running,
        "started": view.running,
        "restartCount": view.restart_count,
    }
    if view.pid is not None and not view.backing_off:
        status["containerID"] = f"sandbox://{view.pid}"
    return status


# ---- pods ---------------------------------------------------------------------------------------------------------

def pod_phase(restart_policy: str, views: Sequence[ContainerView], *, will_restart: bool) -> str:
    """Running while anything runs or will run again; afterwards Succeeded only if every container exited 0."""
    if any(v.running for v in views) or will_restart:
        return "Running"
    if not views or any(v.exit_code is None for v in views):
        return "Pending"
    if all(v.exit_code == 0 for v in views):
        return "Succeeded"
    return "Failed" if restart_policy != "Always" else "Running"


def condition(kind: str, ok: bool, since: str, reason: str | None = None) -> Doc:
    # reason is always present (None when true): status patches merge conditions by type, so a reason left out
    # would outlive the state it explained
    return {"type": kind, "status": "True" if ok else "False", "lastProbeTime": None, "lastTransitionTime": since,
            "reason": reason if not ok else None}


def pod_conditions(*, initialized: bool, ready: bool, started: bool, transitions: dict[str, tuple[bool, str]],
                   at: str, completed: bool = False) -> list[Doc]:
    """The five conditions a kubelet reports; ``transitions`` remembers when each last changed (updated in place)."""
    wanted = {
        "PodReadyToStartContainers": started,
        "Initialized": initialized,
        "Ready": ready,
        "ContainersReady": ready,
        "PodScheduled": True,
    }
    out = []
    for kind, ok in wanted.items():
        previous = transitions.get(kind)
        if previous is None or previous[0] != ok:
            transitions[kind] = (ok, at)
        reason = "PodCompleted" if completed else "ContainersNotReady"
        out.append(condition(kind, ok, transitions[kind][1], reason if kind in ("Ready", "ContainersReady") else None))
    return out


def pod_status(*, phase: str, start_time: str, conditions: list[Doc], containers: Sequence[ContainerView],
               init_containers: Sequence[ContainerView] = (), reason: str | None = None,
               message: str | None = None) -> Doc:
    status: Doc = {
        "phase": phase,
        "hostIP": NODE_IP,
        "hostIPs": [{"ip": NODE_IP}],
        "podIP": NODE_IP,
        "podIPs": [{"ip": NODE_IP}],
        "startTime": start_time,
        "conditions": conditions,
        "containerStatuses": [container_status(v) for v in containers],
        "reason": reason,
        "message": message,
    }
    if init_containers:
        status["initContainerStatuses"] = [container_status(v) for v in init_containers]
    return status


def failed_pod_status(reason: str, message: str, containers: Sequence[ContainerView], start_time: str,
                      at: str) -> Doc:
    """A pod that cannot run here: Failed with the reason, containers left waiting with the same reason."""
    for view in containers:
        view.waiting_reason, view.waiting_message = reason, message
    transitions: dict[str, tuple[bool, str]] = {}
    conditions = pod_conditions(initialized=False, ready=False, started=False, transitions=transitions, at=at)
    return pod_status(phase="Failed", start_time=start_time, conditions=conditions, containers=containers,
                      reason=reason, message=message)


# ---- the node -----------------------------------------------------------------------------------------------------

def node_conditions(heartbeat: str, since: str) -> list[Doc]:
    healthy = [("MemoryPressure", "KubeletHasSufficientMemory"), ("DiskPressure", "KubeletHasNoDiskPressure"),
               ("PIDPressure", "KubeletHasSufficientPID")]
    out = [{"type": kind, "status": "False", "reason": reason, "message": "sandbox node",
            "lastHeartbeatTime": heartbeat, "lastTransitionTime": since} for kind, reason in healthy]
    out.append({"type": "Ready", "status": "True", "reason": "KubeletReady",
                "message": "sandbox node agent is posting ready status",
                "lastHeartbeatTime": heartbeat, "lastTransitionTime": since})
    return out


def node_status(*, name: str, port: int, cpus: int, memory_kib: int, heartbeat: str, since: str, arch: str,
                kernel: str = "", boot_id: str = "", machine_id: str = "") -> Doc:
    capacity = {"cpu": str(cpus), "memory": f"{memory_kib}Ki", "pods": "110", "ephemeral-storage": "100Gi"}
    return {
        "capacity": capacity,
        "allocatable": dict(capacity),
        "conditions": node_conditions(heartbeat, since),
        "addresses": [{"type": "InternalIP", "address": NODE_IP}, {"type": "Hostname", "address": name}],
        "daemonEndpoints": {"kubeletEndpoint": {"Port": port}},
        "nodeInfo": {
            "machineID": machine_id, "systemUUID": "", "bootID": boot_id, "kernelVersion": kernel,
            "osImage": "sandbox (pods run as local processes)",
            "containerRuntimeVersion": RUNTIME_VERSION, "kubeletVersion": KUBELET_VERSION,
            "kubeProxyVersion": "", "operatingSystem": "linux", "architecture": arch,
        },
    }


def node_labels(name: str, arch: str) -> dict[str, str]:
    return {"kubernetes.io/hostname": name, "kubernetes.io/os": "linux", "kubernetes.io/arch": arch,
            "beta.kubernetes.io/os": "linux", "beta.kubernetes.io/arch": arch}

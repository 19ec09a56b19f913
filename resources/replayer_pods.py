"""Replayer members as Kubernetes pods (``backfill.worker_mode: kubernetes``): the same operations as the local
``workers.replay.group.ReplayerGroup`` (``start``, ``stop``, ``members``, ``status``), on bare pods labelled with
the group (``replayer_pod_spec``, one pod per member, named by Kubernetes; the member is named after its pod).

The pods are the group's only record: ``start`` finds them by label, keeps those running with the same replayer
flags (kept in an annotation), replaces them when the flags differ, and adds pods up to the replicas asked for;
``stop`` deletes them (SIGTERM: each finishes its in-flight work, commits and leaves the consumer group) and waits
until they are gone. The lag comes from Kafka (the consumer group's committed offsets), as for the local group.

The members' counters (documents, transactions, comparisons, …): a replayer writes them to its ``--status-file``.
When the group's state folder reaches the pods (``kubernetes.mount_local_paths``, by hostPath at its own path, or a
configured volume holding it, seen by Dagster at the same path) each pod writes ``<state folder>/<pod>.status.json``
there and the status reads it. Otherwise — or while a file cannot be read (another node's hostPath) — a member's
counters are empty and its totals count 0: the status is then lag-only (``totals.stats_source`` says which).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import re
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from resources.kubernetes_pods import core_api, pod_volumes
from resources.replayer import TERMINATION_GRACE_S, replayer_pod_spec
from workers.capture.topic_admin import consumer_lag
from workers.common.errors import ConfigurationError
from workers.replay.group import (
    LOG_TAIL_LINES,
    OWN_FLAGS,
    ReplayerGroupError,
    group_totals,
    password_env_names,
    status_age,
)
from workers.replay.stats import read_status
from workflow_model.config import KubernetesWorkerModel

log = logging.getLogger(__name__)

GROUP_LABEL = "migration-assistant/replayer-group"
GROUP_ANNOTATION = "migration-assistant/replayer-group-id"
ARGS_ANNOTATION = "migration-assistant/replayer-args"
APP_LABELS = {"app.kubernetes.io/name": "migration-replayer", "app.kubernetes.io/component": "replayer"}
# Longest wait for new pods to run (an image pull, a node starting); an unschedulable pod fails sooner, after the
# pod settings' unschedulable_timeout_s.
START_TIMEOUT_S = 600.0
# A container waiting for one of these will not start without a change (a missing secret key, a bad image …).
_HOPELESS = {"CreateContainerConfigError", "InvalidImageName", "ErrImageNeverPull", "ImagePullBackOff",
             "CrashLoopBackOff", "CreateContainerError"}


def group_label(group_id: str) -> str:
    """The label value standing for ``group_id``: itself when it is a valid label value, else a readable prefix
    and a hash (pods are also checked against the full id in an annotation)."""
    if re.fullmatch(r"[A-Za-z0-9]([A-Za-z0-9_.-]{0,61}[A-Za-z0-9])?", group_id):
        return group_id
    digest = hashlib.sha256(group_id.encode()).hexdigest()[:10]
    prefix = re.sub(r"[^A-Za-z0-9_.-]", "-", group_id)[:50].strip("-_.")
    return f"{prefix}-{digest}" if prefix else digest


def _pod_prefix(group_id: str) -> str:
    name = re.sub(r"[^a-z0-9-]+", "-", group_id.lower()).strip("-")[:40].strip("-")
    return f"replayer-{name}-" if name else "replayer-"


def _escape(arg: str) -> str:
    """An argument as Kubernetes passes it on: ``$(VAR)`` would be expanded, ``$$`` collapsed."""
    return arg.replace("$", "$$")


def _flag_values(args: Sequence[str], flag: str) -> list[str]:
    values = []
    for i, arg in enumerate(args):
        name, sep, value = arg.partition("=")
        if name == flag:
            values.append(value if sep else (args[i + 1] if i + 1 < len(args) else ""))
    return values


def _local_folder(value: str) -> str | None:
    return value if value and "://" not in value and value.startswith("/") else None


@dataclass(frozen=True)
class PodMember:
    """One replayer pod of the group, as the API shows it now."""

    name: str
    node: str | None
    phase: str
    started: float | None
    restarts: int
    alive: bool
    waiting: str | None
    args: list[str]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return asdict(self)


@dataclass(frozen=True)
class PodMemberStatus:
    """A member now: its pod, its last status file (None when unreadable) and, when it is not running, its log's
    last lines."""

    member: PodMember
    status_file: str | None
    status: dict[str, Any] | None
    log_tail: list[str] = field(default_factory=list)

    @property
    def alive(self) -> bool:
        """Whether its replayer runs (the pod is Running and its container started, not being deleted)."""
        return self.member.alive

    @property
    def stats(self) -> dict[str, Any]:
        """The counters of its last status (empty before the first one, or when the file cannot be read)."""
        return dict((self.status or {}).get("stats") or {})

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready, with the keys of a local member's that readers use (name, alive, status, log_tail)."""
        return {**self.member.to_dict(), "pod": self.member.name, "status_file": self.status_file,
                "status_age_s": status_age(self.status), "status": self.status, "log_tail": self.log_tail}


@dataclass(frozen=True)
class PodStopped:
    """What ``stop`` did to one pod: ``stopped`` (gone after its graceful delete), ``killed`` (force-deleted after
    the wait) or ``had died`` (its replayer was not running when asked)."""

    name: str
    outcome: Literal["stopped", "killed", "had died"]
    final: dict[str, Any] | None
    log_tail: list[str]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return asdict(self)


class PodReplayerGroup:
    """The replayer pods of consumer group ``group_id`` in ``kube.namespace``; ``state_dir`` (the local group's
    folder) holds the members' status files when it reaches the pods, and a lock serializing ``start``s."""

    def __init__(self, kube: KubernetesWorkerModel, state_dir: Path, group_id: str, api: Any = None) -> None:
        if not group_id:
            raise ConfigurationError("replayer group: the group id is empty")
        self.kube = kube
        self.state_dir = Path(state_dir).resolve()
        self.group_id = group_id
        self.label = group_label(group_id)
        self._api_client = api

    def __repr__(self) -> str:
        return f"PodReplayerGroup({self.group_id!r} in namespace {self.kube.namespace})"

    @property
    def where(self) -> str:
        """The group and its namespace, as error messages name them."""
        return f"replayer group {self.group_id!r} (pods in namespace {self.kube.namespace})"

    @property
    def api(self) -> Any:
        """The CoreV1Api of the pod settings' kubeconfig (built on first use)."""
        if self._api_client is None:
            self._api_client = core_api(self.kube)
        return self._api_client

    @property
    def selector(self) -> str:
        """The label selector of the group's pods."""
        return f"{GROUP_LABEL}={self.label}"

    # -- status files --------------------------------------------------------------------------------------------

    @property
    def status_files_reach_pods(self) -> bool:
        """Whether the pods can write their status files into ``state_dir`` at its own path: mounted by hostPath
        (``mount_local_paths``) or inside a configured volume mounted there."""
        path = str(self.state_dir)
        covered = any(path == v.mount_path.rstrip("/") or path.startswith(v.mount_path.rstrip("/") + "/")
                      for v in self.kube.volumes if not v.read_only)
        return self.kube.mount_local_paths or covered

    def _status_file(self, pod: str) -> str | None:
        return str(self.state_dir / f"{pod}.status.json") if self.status_files_reach_pods else None

    # -- pods ----------------------------------------------------------------------------------------------------

    def _pods(self) -> list[Any]:
        """The group's pods not being deleted, oldest first."""
        from kubernetes.client.exceptions import ApiException

        try:
            pods = self.api.list_namespaced_pod(self.kube.namespace, label_selector=self.selector).items
        except ApiException as exc:
            raise ReplayerGroupError(f"{self.where}: cannot list its pods: {exc.status} {exc.reason}") from None
        mine = [p for p in pods if (p.metadata.annotations or {}).get(GROUP_ANNOTATION) == self.group_id
                and p.metadata.deletion_timestamp is None]
        return sorted(mine, key=lambda p: (p.metadata.creation_timestamp, p.metadata.name))

    @staticmethod
    def _member(pod: Any) -> PodMember:
        statuses = pod.status.container_statuses or []
        state = statuses[0].state if statuses else None
        running = bool(state is not None and state.running is not None)
        waiting = state.waiting.reason if state is not None and state.waiting is not None else None
        created = pod.metadata.creation_timestamp
        try:
            args = json.loads((pod.metadata.annotations or {}).get(ARGS_ANNOTATION) or "[]")
        except ValueError:
            args = []
        return PodMember(name=pod.metadata.name, node=pod.spec.node_name, phase=pod.status.phase or "Unknown",
                         started=created.timestamp() if created is not None else None,
                         restarts=sum(int(s.restart_count or 0) for s in statuses),
                         alive=pod.status.phase == "Running" and running and pod.metadata.deletion_timestamp is None,
                         waiting=waiting, args=list(args) if isinstance(args, list) else [])

    def _log_tail(self, name: str) -> list[str]:
        for previous in (False, True):
            try:
                text = self.api.read_namespaced_pod_log(name, self.kube.namespace, tail_lines=LOG_TAIL_LINES,
                                                        previous=previous)
            except Exception:
                continue
            if text:
                return str(text).splitlines()[-LOG_TAIL_LINES:]
        return []

    def _pod_manifest(self, args: list[str], secret_envs: Sequence[str]) -> dict[str, Any]:
        member_args = [_escape(a) for a in args] + ["--group-id", _escape(self.group_id)]
        local_paths = [p for flag in ("--tuples", "--dead-letters") for v in _flag_values(args, flag)
                       if (p := _local_folder(v))]
        if self.status_files_reach_pods:
            # $(REPLAYER_MEMBER): the pod's name, which replayer_pod_spec gives the member (Kubernetes expands it).
            member_args += ["--status-file", f"{_escape(str(self.state_dir))}/$(REPLAYER_MEMBER).status.json"]
            local_paths.append(str(self.state_dir))
        spec = replayer_pod_spec(self.kube, member_args, secret_envs)
        volumes, mounts = pod_volumes(self.kube, local_paths)
        if volumes:
            spec["volumes"] = volumes
            spec["containers"][0]["volumeMounts"] = mounts
        spec["automountServiceAccountToken"] = False  # a replayer calls no Kubernetes API
        return {"apiVersion": "v1", "kind": "Pod",
                "metadata": {"generateName": _pod_prefix(self.group_id), "namespace": self.kube.namespace,
                             "labels": {**APP_LABELS, GROUP_LABEL: self.label},
                             "annotations": {GROUP_ANNOTATION: self.group_id, ARGS_ANNOTATION: json.dumps(args)}},
                "spec": spec}

    def _create(self, count: int, args: list[str], secret_envs: Sequence[str]) -> list[str]:
        from kubernetes.client.exceptions import ApiException

        if count > 0 and self.status_files_reach_pods:
            self.state_dir.mkdir(parents=True, exist_ok=True)
        names = []
        for _ in range(count):
            try:
                pod = self.api.create_namespaced_pod(self.kube.namespace, self._pod_manifest(args, secret_envs))
            except ApiException as exc:
                raise ReplayerGroupError(f"{self.where}: cannot create a replayer pod: {exc.status} {exc.reason}: "
                                         f"{exc.body}") from None
            names.append(pod.metadata.name)
            log.info("%s: created pod %s", self.where, pod.metadata.name)
        return names

    def _wait_running(self, names: list[str]) -> None:
        """Until every pod in ``names`` runs its replayer: an error when one cannot be scheduled for
        ``unschedulable_timeout_s``, waits on a hopeless condition, fails, or is still not running after
        ``START_TIMEOUT_S``."""
        started = time.monotonic()
        unschedulable_since: float | None = None
        while names:
            pods = {p.metadata.name: p for p in self._pods()}
            gone = [n for n in names if n not in pods]
            if gone:
                raise ReplayerGroupError(f"{self.where}: pod(s) {', '.join(gone)} were deleted while starting")
            pending = []
            for name in names:
                pod, member = pods[name], self._member(pods[name])
                if member.alive:
                    continue
                if member.phase in ("Failed", "Succeeded") or member.waiting in _HOPELESS:
                    why = member.phase + (f", {member.waiting}" if member.waiting else "")
                    tail = " | ".join(self._log_tail(name)[-5:])
                    raise ReplayerGroupError(f"{self.where}: pod {name} did not start its replayer ({why})"
                                             + (f": {tail}" if tail else ""))
                condition = next((c for c in pod.status.conditions or [] if c.type == "PodScheduled"), None)
                if condition is not None and condition.status == "False" and condition.reason == "Unschedulable":
                    unschedulable_since = unschedulable_since or time.monotonic()
                    if time.monotonic() - unschedulable_since >= self.kube.unschedulable_timeout_s:
                        raise ReplayerGroupError(
                            f"{self.where}: pod {name} could not be scheduled for "
                            f"{self.kube.unschedulable_timeout_s:.0f} s: {condition.message or 'no reason given'}")
                pending.append(name)
            names = pending
            if names and time.monotonic() - started > START_TIMEOUT_S:
                raise ReplayerGroupError(f"{self.where}: pod(s) {', '.join(names)} still not running after "
                                         f"{START_TIMEOUT_S:g} s")
            if names:
                time.sleep(0.3)

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        """Two ``start``s from this machine take turns (they must not both create the missing pods)."""
        try:
            self.state_dir.mkdir(parents=True, exist_ok=True)
            lock = (self.state_dir / ".pods.lock").open("w")
        except OSError:
            yield  # no local state folder: nothing to serialize on
            return
        with lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    # -- operations ----------------------------------------------------------------------------------------------

    def start(self, replicas: int, args: list[str], secret_envs: Sequence[str] = ()) -> list[PodMember]:
        """Run ``replicas`` pods with the replayer flags ``args``: running pods with the same flags are kept (asking
        for fewer than run changes nothing), pods whose replayer ended are replaced, and pods started with other
        flags are stopped and replaced. Returns once every member runs; returns the members."""
        if replicas < 1:
            raise ConfigurationError(f"{self.where}: the number of replicas must be 1 or more, not {replicas}")
        for arg in args:
            if arg.partition("=")[0] in OWN_FLAGS:
                raise ConfigurationError(f"{self.where}: {arg.partition('=')[0]} is set by the group for each "
                                         "member; leave it out")
        password_env_names(list(args), self.where)
        with self._locked():
            pods = self._pods()
            members = [self._member(p) for p in pods]
            other = [m for m in members if m.args != list(args)]
            if other:
                log.warning("%s: %d pod(s) run with other replayer flags; replacing them", self.where, len(other))
                self._stop([m.name for m in other], TERMINATION_GRACE_S)
            ended = [m for m in members if m not in other and m.phase in ("Failed", "Succeeded")]
            if ended:
                log.warning("%s: pod(s) %s had ended; replacing them", self.where, ", ".join(m.name for m in ended))
                self._stop([m.name for m in ended], 10)
            kept = [m.name for m in members if m not in other and m not in ended]
            created = self._create(replicas - len(kept), list(args), secret_envs)
            self._wait_running(kept + created)
            names = set(kept + created)
            return [self._member(p) for p in self._pods() if p.metadata.name in names]

    def members(self) -> list[PodMemberStatus]:
        """Every pod of the group, oldest first: running or not, its last status, its log's tail when it is not
        running."""
        out: list[PodMemberStatus] = []
        for pod in self._pods():
            member = self._member(pod)
            status_file = self._status_file(member.name)
            out.append(PodMemberStatus(member, status_file, read_status(status_file) if status_file else None,
                                       [] if member.alive else self._log_tail(member.name)))
        return out

    def status(self, brokers: str, topic: str, config: dict[str, Any] | None = None) -> dict[str, Any]:
        """The pods and the consumer group's lag on ``topic`` (from Kafka, never joining the group), in the shape
        of ``ReplayerGroup.status`` (what ``wait_for_catch_up`` and the replay asset read). Counters come from the
        members' status files when readable, else count 0 (``totals.stats_source``: ``status files``,
        ``partial`` or ``none``)."""
        members = self.members()
        lag = consumer_lag(brokers, topic, self.group_id, config)
        readable = sum(m.status is not None for m in members)
        totals: dict[str, Any] = {
            **group_totals(members, lag.total_lag, lag.time_lag_s),
            "stats_source": ("status files" if members and readable == len(members)
                             else "partial" if readable else "none"),
        }
        return {"group": self.group_id, "state_dir": str(self.state_dir), "namespace": self.kube.namespace,
                "selector": self.selector, "topic": topic, "brokers": brokers,
                "members": [m.to_dict() for m in members], "lag": lag.to_dict(), "totals": totals}

    def stop(self, timeout_s: float = TERMINATION_GRACE_S) -> list[PodStopped]:
        """Delete every pod of the group (gracefully: each replayer commits and leaves the consumer group) and wait
        up to ``timeout_s`` for them to be gone; those still there are then force-deleted."""
        return self._stop(None, timeout_s)

    def _stop(self, names: list[str] | None, timeout_s: float) -> list[PodStopped]:
        from kubernetes.client.exceptions import ApiException

        chosen = [self._member(p) for p in self._pods() if names is None or p.metadata.name in names]
        report: dict[str, PodStopped] = {}
        grace = max(1, min(int(timeout_s), TERMINATION_GRACE_S))
        for member in chosen:
            if not member.alive:
                status_file = self._status_file(member.name)
                report[member.name] = PodStopped(member.name, "had died",
                                                 read_status(status_file) if status_file else None,
                                                 self._log_tail(member.name))
            try:
                self.api.delete_namespaced_pod(member.name, self.kube.namespace, grace_period_seconds=grace)
            except ApiException as exc:
                if exc.status != 404:
                    raise ReplayerGroupError(f"{self.where}: cannot delete pod {member.name}: {exc.status} "
                                             f"{exc.reason}") from None
        waiting = {m.name for m in chosen}
        deadline = time.monotonic() + timeout_s
        while waiting and time.monotonic() < deadline:
            waiting &= self._present()
            if waiting:
                time.sleep(0.3)
        for name in sorted(waiting):
            log.warning("%s: pod %s still there %gs after its delete; force-deleting it", self.where, name, timeout_s)
            with contextlib.suppress(ApiException):
                self.api.delete_namespaced_pod(name, self.kube.namespace, grace_period_seconds=0)
        end = time.monotonic() + 10
        while waiting and time.monotonic() < end:
            if not waiting & self._present():
                break
            time.sleep(0.2)
        for member in chosen:
            if member.name not in report:
                status_file = self._status_file(member.name)
                report[member.name] = PodStopped(member.name, "killed" if member.name in waiting else "stopped",
                                                 read_status(status_file) if status_file else None, [])
        return [report[m.name] for m in chosen]

    def _present(self) -> set[str]:
        """The names of the group's pods, including those being deleted."""
        pods = self.api.list_namespaced_pod(self.kube.namespace, label_selector=self.selector).items
        return {p.metadata.name for p in pods}

"""Workers as Kubernetes pods through ``PipesK8sClient``: the pod spec (resources, secrets, volumes) and a watch on
the pod that turns what ``PipesK8sClient`` would wait out for a day (a pod the scheduler cannot place, a pod deleted
under a run) into a failure that says why."""

from __future__ import annotations

import contextlib
import functools
import io
import sys
import threading
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TextIO

import dagster as dg

from workflow_model.config import KubernetesWorkerModel, PodVolumeModel

WORKER_CONTAINER = "dagster-pipes-execution"
# One value per attempt: how the watch finds the pod PipesK8sClient named.
ATTEMPT_LABEL = "migration-assistant/attempt"


class PodUnschedulable(dg.Failure):
    """The scheduler could not place the pod: another attempt on the same cluster would not either."""


class PodGone(dg.Failure):
    """The pod was deleted (or evicted) while its worker ran: another attempt resumes from the checkpoint."""


def _covered(path: str, volumes: Sequence[PodVolumeModel]) -> bool:
    return any(path == v.mount_path or path.startswith(v.mount_path.rstrip("/") + "/") for v in volumes)


def pod_volumes(kube: KubernetesWorkerModel, local_paths: Sequence[str]) -> tuple[list[dict[str, Any]],
                                                                                  list[dict[str, Any]]]:
    """The pod's volumes and the container's mounts: the configured ones, then each local path the worker is given
    (a filesystem repository, a dead-letter folder) at its own path, unless a configured volume holds it."""
    volumes: list[dict[str, Any]] = []
    mounts: list[dict[str, Any]] = []
    for v in kube.volumes:
        source = ({"hostPath": {"path": v.host_path, "type": "DirectoryOrCreate"}} if v.host_path
                  else {"persistentVolumeClaim": {"claimName": v.claim, "readOnly": v.read_only}})
        volumes.append({"name": v.name, **source})
        mounts.append({"name": v.name, "mountPath": v.mount_path, "readOnly": v.read_only})
    if kube.mount_local_paths:
        for i, path in enumerate(dict.fromkeys(p.rstrip("/") or "/" for p in local_paths)):
            if _covered(path, kube.volumes):
                continue
            name = f"local-path-{i}"
            volumes.append({"name": name, "hostPath": {"path": path, "type": "DirectoryOrCreate"}})
            mounts.append({"name": name, "mountPath": path})
    return volumes, mounts


def worker_pod_spec(kube: KubernetesWorkerModel, secret_envs: Sequence[str] = (),
                    local_paths: Sequence[str] = ()) -> dict[str, Any]:
    """The pod spec of a worker: the CPU and memory of ``kube`` as requests and limits, the named password
    variables from the Kubernetes secret ``kube.secret``, volumes for the local paths it reads or writes."""
    container: dict[str, Any] = {
        "name": WORKER_CONTAINER,
        "resources": {"requests": {"cpu": kube.cpu, "memory": kube.memory},
                      "limits": {"cpu": kube.cpu, "memory": kube.memory}},
    }
    if kube.secret and secret_envs:
        container["env"] = [{"name": name, "valueFrom": {"secretKeyRef": {"name": kube.secret, "key": name}}}
                            for name in secret_envs]
    volumes, mounts = pod_volumes(kube, local_paths)
    if mounts:
        container["volumeMounts"] = mounts
    # Workers call no Kubernetes API: no token in their file system.
    spec: dict[str, Any] = {"containers": [container], "restartPolicy": "Never", "automountServiceAccountToken": False}
    if volumes:
        spec["volumes"] = volumes
    if kube.service_account:
        spec["serviceAccountName"] = kube.service_account
    return spec


def core_api(kube: KubernetesWorkerModel) -> Any:
    """A CoreV1Api client for the pod settings: their kubeconfig, else in-cluster, else ~/.kube/config."""
    import kubernetes

    if kube.kubeconfig:
        return kubernetes.client.CoreV1Api(kubernetes.config.new_client_from_config(kube.kubeconfig, kube.context))
    try:
        kubernetes.config.load_incluster_config()
    except kubernetes.config.ConfigException:
        kubernetes.config.load_kube_config(context=kube.context)
    return kubernetes.client.CoreV1Api()


class PodWatch:
    """Polls one pod while ``PipesK8sClient`` waits on it; records why it can never finish and deletes it then, so
    that the wait ends at once rather than after ``PipesK8sClient``'s day-long timeout."""

    def __init__(self, api: Any, namespace: str, selector: str, unschedulable_timeout_s: float,
                 log: Any, poll_s: float = 0.5) -> None:
        self.api, self.namespace, self.selector = api, namespace, selector
        self.name = ""
        self.unschedulable_timeout_s, self.poll_s, self.log = unschedulable_timeout_s, poll_s, log
        self.failure: dg.Failure | None = None
        self.seen = False
        self.node: str | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"pod-watch-{selector}", daemon=True)

    def __enter__(self) -> PodWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _run(self) -> None:

        unschedulable_since: float | None = None
        while not self._stop.wait(self.poll_s):
            try:
                # PipesK8sClient names its pod itself (a random suffix): it is found by the attempt's own label.
                pods = self.api.list_namespaced_pod(self.namespace, label_selector=self.selector).items
            except Exception:
                continue
            if not pods:
                if self.seen and not self._stop.is_set():
                    self.failure = self._gone()
                    return
                continue
            pod = pods[0]
            self.seen, self.name = True, pod.metadata.name
            self.node = pod.spec.node_name or self.node
            if pod.metadata.deletion_timestamp and not self._stop.is_set() and self.failure is None:
                self.failure = self._gone()
            condition = next((c for c in pod.status.conditions or [] if c.type == "PodScheduled"), None)
            if condition is not None and condition.status == "False" and condition.reason == "Unschedulable":
                unschedulable_since = unschedulable_since or time.monotonic()
                if time.monotonic() - unschedulable_since >= self.unschedulable_timeout_s:
                    self._fail_unschedulable(condition.message or "no reason given")
                    return
            else:
                unschedulable_since = None

    def _gone(self) -> PodGone:
        return PodGone(f"pod {self.namespace}/{self.name} was deleted while its worker ran (deleted or evicted); "
                       "another attempt resumes from the shard's checkpoint",
                       metadata={"pod": f"{self.namespace}/{self.name}"})

    def explain(self) -> dg.Failure | None:
        """Why the pod's run failed, when the pod is the reason: the watch's finding, else a last look (a pod
        deleted between two polls is only seen gone now)."""
        if self.failure is not None or not self.seen:
            return self.failure
        try:
            pods = self.api.list_namespaced_pod(self.namespace, label_selector=self.selector).items
        except Exception:
            return None
        if not pods or pods[0].metadata.deletion_timestamp:
            return self._gone()
        return None

    def _fail_unschedulable(self, message: str) -> None:
        self.failure = PodUnschedulable(
            f"pod {self.namespace}/{self.name} could not be scheduled for {self.unschedulable_timeout_s:.0f} s: "
            f"{message}", metadata={"pod": f"{self.namespace}/{self.name}", "scheduler": message})
        self.log.error(str(self.failure.description))


class _ThreadRoutedStdout(io.TextIOBase):
    """``sys.stdout`` that sends a thread's writes to that thread's own target while one is set: PipesK8sClient
    prints the pod's log lines (all but Pipes messages) to ``sys.stdout`` from the step's thread, and shard steps
    share a process when runs execute in-process."""

    def __init__(self, original: TextIO) -> None:
        self.original = original
        self.targets: dict[int, TextIO] = {}

    def write(self, text: str) -> int:
        target = self.targets.get(threading.get_ident(), self.original)
        return target.write(text)

    def flush(self) -> None:
        self.targets.get(threading.get_ident(), self.original).flush()


_ROUTE_LOCK = threading.Lock()


@contextmanager
def _stdout_to(target: TextIO | None) -> Iterator[None]:
    if target is None:
        yield
        return
    with _ROUTE_LOCK:
        if not isinstance(sys.stdout, _ThreadRoutedStdout):
            sys.stdout = _ThreadRoutedStdout(sys.stdout)
        router = sys.stdout
    router.targets[threading.get_ident()] = target
    try:
        yield
    finally:
        router.targets.pop(threading.get_ident(), None)


class _Tee(io.TextIOBase):
    def __init__(self, *streams: TextIO) -> None:
        self.streams = streams

    def write(self, text: str) -> int:
        for stream in self.streams:
            stream.write(text)
        return len(text)

    def flush(self) -> None:
        for stream in self.streams:
            stream.flush()


@functools.cache
def _client_class() -> type:
    """``PipesK8sClient``, with its wait for the pod to start bounded by the watch: the client itself waits a day
    for a pod that is never placed (its launch timeout is not a parameter of ``run``)."""
    from dagster_k8s import PipesK8sClient

    class WatchedPipesK8sClient(PipesK8sClient):
        def __init__(self, watch: PodWatch, log_target: TextIO | None, **kwargs: Any) -> None:
            super().__init__(**kwargs)
            self.watch, self.log_target = watch, log_target

        @contextmanager
        def consume_pod_logs(self, context: Any, client: Any, namespace: str, pod_name: str,
                             enable_multi_container_logs: bool = False,
                             ignore_containers: set[Any] | None = None) -> Iterator[Any]:
            while True:
                if self.watch.failure is not None:
                    raise self.watch.failure
                pods = client.core_api.list_namespaced_pod(namespace, field_selector=f"metadata.name={pod_name}").items
                if pods and (pods[0].status.container_statuses or pods[0].status.phase != "Pending"):
                    break
                time.sleep(self.poll_interval)
            with _stdout_to(self.log_target), super().consume_pod_logs(
                    context, client, namespace, pod_name, enable_multi_container_logs, ignore_containers):
                yield

    return WatchedPipesK8sClient


@contextmanager
def _watching(context: dg.AssetExecutionContext, kube: KubernetesWorkerModel, selector: str) -> Iterator[PodWatch]:
    with PodWatch(core_api(kube), kube.namespace, selector, kube.unschedulable_timeout_s, context.log) as watch:
        yield watch


def run_worker_pod(context: dg.AssetExecutionContext, kube: KubernetesWorkerModel, command: Sequence[str],
                   pod_spec: Mapping[str, Any], extras: Mapping[str, Any], log_file: str | None = None,
                   log_stderr: bool = True) -> dg.MaterializeResult:
    """Run a worker as a pod through Pipes and return its materialization; a pod that cannot be placed or that is
    deleted under the run fails it with the reason.

    The pod's log lines (its ``kubectl logs``) are echoed on this process's stdout, Dagster's captured output; with
    ``log_file`` they go to that file instead (and to stderr with ``log_stderr``), as a local worker's do."""
    with contextlib.ExitStack() as stack:
        target: TextIO | None = None
        if log_file:
            Path(log_file).parent.mkdir(parents=True, exist_ok=True)
            file = stack.enter_context(open(log_file, "a", encoding="utf-8"))
            target = _Tee(file, sys.stderr) if log_stderr else file  # type: ignore[assignment]
        return _run_worker_pod(context, kube, command, pod_spec, extras, target)


def _run_worker_pod(context: dg.AssetExecutionContext, kube: KubernetesWorkerModel, command: Sequence[str],
                    pod_spec: Mapping[str, Any], extras: Mapping[str, Any],
                    log_target: TextIO | None) -> dg.MaterializeResult:
    attempt = uuid.uuid4().hex[:16]
    context.log.info(f"starting a worker pod in namespace {kube.namespace} ({kube.cpu} CPU, {kube.memory}; label "
                     f"{ATTEMPT_LABEL}={attempt})")
    labels = {"app.kubernetes.io/name": "migration-worker",
              "app.kubernetes.io/component": context.op.name.replace("_", "-"), ATTEMPT_LABEL: attempt}
    with _watching(context, kube, f"{ATTEMPT_LABEL}={attempt}") as watch:
        client = _client_class()(watch, log_target, kubeconfig_file=kube.kubeconfig, kube_context=kube.context,
                                 load_incluster_config=False if kube.kubeconfig else None, poll_interval=1.0)
        try:
            invocation = client.run(context=context, image=kube.image, command=list(command),
                                    namespace=kube.namespace, base_pod_spec=dict(pod_spec), extras=dict(extras),
                                    base_pod_meta={"labels": labels})
        except Exception as exc:
            failure = watch.explain()
            if failure is not None:
                raise failure from exc
            raise
    result = invocation.get_materialize_result()
    metadata = dict(result.metadata or {})
    metadata["pod"] = dg.MetadataValue.text(f"{kube.namespace}/{watch.name or '?'}")
    if watch.node:
        metadata["node"] = dg.MetadataValue.text(watch.node)
    return dg.MaterializeResult(asset_key=result.asset_key, metadata=metadata, check_results=result.check_results,
                                data_version=result.data_version, tags=result.tags)

"""One pod on the sandbox node: its containers as local processes, from first start to deletion, in one thread.

The thread resolves the spec (retrying while Secrets, ConfigMaps or claims are missing), runs init containers in
order, starts the containers, restarts them as ``restartPolicy`` says (back-off 1 s doubling to 30 s), runs readiness
probes, and patches the pod's status whenever it changes. Deletion stops the processes (SIGTERM to each process
group, SIGKILL after the grace period), writes the final status and deletes the pod object with grace 0.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import signal
import sys
import threading
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from migration_pipeline.sandbox.kubernetes.node_agent_api import NodeApi
from migration_pipeline.sandbox.kubernetes.node_agent_logs import LogSource
from migration_pipeline.sandbox.kubernetes.node_agent_probe import Probe, run_probe
from migration_pipeline.sandbox.kubernetes.node_agent_process import (
    Attempt,
    Launch,
    can_mount,
    exit_code_of,
    signal_group,
    spawn,
    terminate,
)
from migration_pipeline.sandbox.kubernetes.node_agent_spec import (
    Lookups,
    PodSpecError,
    base_env,
    command_line,
    container_env,
)
from migration_pipeline.sandbox.kubernetes.node_agent_status import (
    ContainerView,
    failed_pod_status,
    now_rfc3339,
    pod_conditions,
    pod_phase,
    pod_status,
    terminated_state,
)
from migration_pipeline.sandbox.kubernetes.node_agent_volumes import (
    container_mounts,
    materialize,
    mount_wrapper,
    plan_volumes,
    pv_host_path,
)

Doc = dict[str, Any]
TICK_SECONDS = 0.5
RETRY_SECONDS = 3.0
MAX_GRACE_SECONDS = 30
BACKOFF_START, BACKOFF_MAX = 1.0, 30.0
BACKOFF_RESET_AFTER = 60.0  # a container that ran this long starts its back-off afresh


def say(message: str) -> None:
    """One line to the agent's stderr (its log file). Never pass Secret values here."""
    print(f"{time.strftime('%Y-%m-%dT%H:%M:%S')} node-agent: {message}", file=sys.stderr, flush=True)


@dataclass
class ContainerRun:
    spec: Doc
    view: ContainerView
    launch: Launch | None = None
    attempt: Attempt | None = None
    started_mono: float = 0.0
    backoff: float = BACKOFF_START
    restart_at: float | None = None
    probe: Probe | None = None
    done: bool = False  # exited and will not run again

    @property
    def name(self) -> str:
        return str(self.spec["name"])


class PodWorker(threading.Thread):
    """Runs one pod; ``update`` feeds it newer versions of the pod, ``stop`` ends it."""

    def __init__(self, pod: Doc, api: NodeApi, root: Path) -> None:
        meta = pod["metadata"]
        super().__init__(name=f"pod-{meta['namespace']}/{meta['name']}", daemon=True)
        self.pod = pod
        self.api = api
        self.namespace, self.pod_name, self.uid = meta["namespace"], meta["name"], meta["uid"]
        self.dir = root / "pods" / f"{self.namespace}_{self.pod_name}_{self.uid}"
        self.restart_policy = pod["spec"].get("restartPolicy", "Always")
        self.start_time = now_rfc3339()
        self.inits = [self._run_for(c) for c in pod["spec"].get("initContainers", []) or []]
        self.containers = [self._run_for(c) for c in pod["spec"]["containers"]]
        self.initialized = not self.inits
        self._transitions: dict[str, tuple[bool, str]] = {}
        self._last_status: str | None = None
        self._halt = threading.Event()
        self._grace = MAX_GRACE_SECONDS
        self._gone = False  # the pod object no longer exists: no more API calls for it
        self._shutdown = False  # the agent is stopping: leave the pod object alone
        self._final: Doc | None = None  # the status of a pod that failed before its containers ran

    @staticmethod
    def _run_for(spec: Doc) -> ContainerRun:
        return ContainerRun(spec, ContainerView(spec["name"], spec.get("image", "")))

    @property
    def label(self) -> str:
        return f"{self.namespace}/{self.pod_name}"

    # ---- from the agent ---------------------------------------------------------------------------------------

    def update(self, pod: Doc) -> None:
        self.pod = pod
        if pod["metadata"].get("deletionTimestamp"):
            grace = pod["metadata"].get("deletionGracePeriodSeconds")
            if grace is None:
                grace = pod["spec"].get("terminationGracePeriodSeconds", MAX_GRACE_SECONDS)
            self.stop(int(grace))

    def stop(self, grace: int, *, gone: bool = False, shutdown: bool = False) -> None:
        if not self._halt.is_set():
            self._grace = max(0, min(grace, MAX_GRACE_SECONDS))
        self._gone = self._gone or gone
        self._shutdown = self._shutdown or shutdown
        self._halt.set()

    def log_source(self, container: str, previous: bool) -> LogSource | str:
        run = next((r for r in [*self.inits, *self.containers] if r.name == container), None)
        if run is None:
            return f'container "{container}" in pod "{self.pod_name}" not found'
        if previous:
            path = self.dir / f"{container}.previous.log"
            if not path.exists():
                return f'previous terminated container "{container}" in pod "{self.pod_name}" not found'
            return LogSource(path, lambda: True)
        attempt = run.attempt
        if attempt is None and (self.dir / f"{container}.log").exists():
            return LogSource(self.dir / f"{container}.log", lambda: True)  # written before the agent restarted
        if attempt is None:
            return f'container "{container}" in pod "{self.pod_name}" is waiting to start: {run.view.waiting_reason}'
        return LogSource(attempt.log_path, attempt.finished)

    # ---- the thread -------------------------------------------------------------------------------------------

    def run(self) -> None:
        try:
            if self._earlier_run_lost():
                return
            launches = self._prepare()
            if launches is not None and self._run_inits(launches):
                self._run_containers(launches)
        except Exception:
            say(f"pod {self.label}: unexpected error\n{traceback.format_exc()}")
            with contextlib.suppress(Exception):
                self._terminate([*self.inits, *self.containers], 5)  # a Failed pod must not keep processes
                self._fail("NodeAgentError", "the sandbox node agent hit an unexpected error; see its log")
        finally:
            self._finish()

    def _earlier_run_lost(self) -> bool:
        """A pod this node ran before the agent restarted: its processes are gone; Never means it cannot rerun."""
        statuses = self.pod.get("status", {}).get("containerStatuses") or []
        ran = any(str(s.get("containerID", "")).startswith("sandbox://") for s in statuses)
        if ran and self.restart_policy == "Never":
            self._fail("NodeAgentRestarted", "the sandbox node agent restarted while the pod ran; its processes are "
                       "gone and restartPolicy Never forbids running it again")
            return True
        return False

    def _wait(self, seconds: float) -> bool:
        """Sleep unless stopped; True when stopped."""
        return self._halt.wait(seconds)

    # ---- resolving the spec -----------------------------------------------------------------------------------

    def _lookups(self) -> Lookups:
        ns = self.namespace

        def claim_path(name: str) -> str:
            claim = self.api.claim(ns, name)
            if claim is None:
                raise PodSpecError("ContainerCreating", f'persistentvolumeclaim "{name}" not found', retry=True)
            volume_name = claim.get("spec", {}).get("volumeName")
            if not volume_name or claim.get("status", {}).get("phase") != "Bound":
                raise PodSpecError("ContainerCreating", f'persistentvolumeclaim "{name}" is not bound yet',
                                   retry=True)
            volume = self.api.volume(volume_name)
            path = pv_host_path(volume) if volume else None
            if path is None:
                raise PodSpecError("UnsupportedVolume", f"persistentvolume {volume_name!r} (claim {name!r}) is not a "
                                   "hostPath or local volume, which is all the sandbox node can mount", retry=False)
            return path

        def token(audience: str | None, seconds: int) -> str | None:
            try:
                return self.api.token(self.pod, audience, seconds)
            except Exception as exc:  # the volume is best effort; the container still runs
                say(f"pod {self.label}: no service-account token: {exc}")
                return None

        return Lookups(ns, lambda n: self.api.secret(ns, n), lambda n: self.api.config_map(ns, n), claim_path, token)

    def _resolve(self) -> dict[str, Launch]:
        lookups = self._lookups()
        volumes = plan_volumes(self.pod, str(self.dir), lookups)
        materialize(volumes)
        tmp = self.dir / "tmp"
        tmp.mkdir(parents=True, exist_ok=True)
        base = base_env(self.pod, tmpdir=str(tmp), api_server=self.api.server)
        mountable = can_mount()
        launches = {}
        for run in [*self.inits, *self.containers]:
            env = container_env(run.spec, self.pod, lookups, base)
            argv = command_line(run.spec, env)
            cwd = run.spec.get("workingDir") or str(self.dir / "work")
            mounts = container_mounts(run.spec, volumes, env, can_mount=mountable)
            launches[run.name] = Launch(mount_wrapper(argv, mounts, cwd), env, cwd)
        return launches

    def _prepare(self) -> dict[str, Launch] | None:
        while not self._halt.is_set():
            try:
                return self._resolve()
            except PodSpecError as exc:
                if not exc.retry:
                    say(f"pod {self.label}: cannot run: {exc.reason}: {exc.message}")
                    self._fail(exc.reason, exc.message)
                    return None
                for run in [*self.inits, *self.containers]:
                    run.view.waiting_reason, run.view.waiting_message = exc.reason, exc.message
                self._publish()
            except Exception as exc:
                say(f"pod {self.label}: resolving the spec failed, retrying: {exc}")
            self._wait(RETRY_SECONDS)
        return None

    # ---- processes --------------------------------------------------------------------------------------------

    def _start(self, run: ContainerRun, launch: Launch) -> None:
        log_path = self.dir / f"{run.name}.log"
        if run.attempt is not None and log_path.exists():
            log_path.replace(self.dir / f"{run.name}.previous.log")  # an open follower keeps reading the old file
        view = run.view
        view.started_at, view.finished_at, view.exit_code, view.signal_reason = now_rfc3339(), None, None, None
        view.waiting_message, view.ready, view.backing_off = None, False, False
        try:
            run.attempt = spawn(launch, log_path)
        except OSError as exc:
            log_path.write_bytes(b"")
            run.attempt = Attempt(None, None, log_path, time.monotonic())
            view.pid, view.exit_code, view.finished_at, view.signal_reason = None, 128, now_rfc3339(), "StartError"
            view.waiting_message = str(exc)
            say(f"pod {self.label} container {run.name}: could not start: {exc}")
            return
        proc = run.attempt.proc
        assert proc is not None
        run.started_mono = time.monotonic()
        view.pid = proc.pid
        probe = run.spec.get("readinessProbe")
        run.probe = Probe(probe, time.monotonic() + probe.get("initialDelaySeconds", 0)) if probe else None
        view.ready = probe is None
        say(f"pod {self.label} container {run.name}: started pid {proc.pid}")

    def _reap(self, run: ContainerRun) -> bool:
        """Record the exit of a container's process; True when it just exited."""
        attempt = run.attempt
        if attempt is None or attempt.reaped:
            return False
        if attempt.proc is None:  # it never started; the exit was recorded by _start
            attempt.reaped = True
            return True
        code = attempt.proc.poll()
        if code is None:
            return False
        attempt.exited_at, attempt.reaped = time.monotonic(), True
        signal_group(attempt.proc.pid, signal.SIGKILL)  # what it left running in its group goes with it
        run.view.exit_code, run.view.finished_at, run.view.ready = exit_code_of(code), now_rfc3339(), False
        say(f"pod {self.label} container {run.name}: pid {attempt.proc.pid} exited with code {run.view.exit_code}")
        return True

    def _after_exit(self, run: ContainerRun, policy: str) -> None:
        """Schedule a restart as the policy says, or mark the container done."""
        code = run.view.exit_code or 0
        if policy == "Always" or (policy == "OnFailure" and code != 0):
            if time.monotonic() - run.started_mono > BACKOFF_RESET_AFTER:
                run.backoff = BACKOFF_START
            run.restart_at = time.monotonic() + run.backoff
            view = run.view
            view.last_state = terminated_state(code, view.started_at, view.finished_at, view.pid, view.signal_reason)
            view.backing_off = True
            run.view.waiting_message = (f"back-off {int(run.backoff)}s restarting failed container={run.name} "
                                        f"pod={self.pod_name}_{self.namespace}({self.uid})")
            run.backoff = min(run.backoff * 2, BACKOFF_MAX)
        else:
            run.done = True

    def _maybe_restart(self, run: ContainerRun, launch: Launch) -> None:
        if run.restart_at is None or time.monotonic() < run.restart_at:
            return
        run.restart_at = None
        run.view.restart_count += 1
        self._start(run, launch)

    def _terminate(self, runs: list[ContainerRun], grace: float) -> None:
        """Stop every running container (SIGTERM, SIGKILL after ``grace`` seconds) and record how they ended."""
        live = [r for r in runs if r.attempt and r.attempt.proc and not r.attempt.reaped]
        terminate([r.attempt.proc for r in live if r.attempt and r.attempt.proc], grace)
        for run in live:
            self._reap(run)
            run.done = True
        for run in runs:
            if run.restart_at is not None:  # backing off: it stays as it last ended
                run.restart_at, run.done, run.view.backing_off = None, True, False

    # ---- init containers and containers -------------------------------------------------------------------------

    def _run_inits(self, launches: dict[str, Launch]) -> bool:
        """Each init container in order, to exit 0 (restarted with back-off unless restartPolicy is Never)."""
        for run in self.inits:
            self._start(run, launches[run.name])
            while not run.done:
                if self._wait(TICK_SECONDS):
                    return False
                if self._reap(run):
                    if run.view.exit_code == 0:
                        run.done = True
                    elif self.restart_policy == "Never":
                        self._publish()
                        self._fail("InitContainerFailed", f"init container {run.name!r} exited with code "
                                   f"{run.view.exit_code}")
                        return False
                    else:
                        self._after_exit(run, "OnFailure")
                self._maybe_restart(run, launches[run.name])
                self._publish()
        self.initialized = True
        return True

    def _run_containers(self, launches: dict[str, Launch]) -> None:
        for run in self.containers:
            self._start(run, launches[run.name])
        self._publish()
        while not self._wait(TICK_SECONDS):
            for run in self.containers:
                if self._reap(run):
                    self._after_exit(run, self.restart_policy)
                self._maybe_restart(run, launches[run.name])
                self._probe(run, launches[run.name])
            self._publish()
            if all(r.done for r in self.containers):
                say(f"pod {self.label}: {self._phase()}")
                self._halt.wait()  # the pod object stays until deleted; its logs stay readable till then
                return

    def _probe(self, run: ContainerRun, launch: Launch) -> None:
        probe = run.probe
        if probe is None or not run.view.running or time.monotonic() < probe.next_at:
            return
        spec = probe.spec
        probe.next_at = time.monotonic() + spec.get("periodSeconds", 10)
        ok = run_probe(spec, run.spec, launch.env, launch.cwd)
        if ok:
            probe.successes, probe.failures = probe.successes + 1, 0
            if probe.successes >= spec.get("successThreshold", 1):
                run.view.ready = True
        else:
            probe.successes, probe.failures = 0, probe.failures + 1
            if probe.failures >= spec.get("failureThreshold", 3) or not run.view.ready:
                run.view.ready = False

    # ---- status -----------------------------------------------------------------------------------------------

    def _phase(self) -> str:
        if not self.initialized:
            return "Pending"
        restarting = any(r.restart_at is not None for r in self.containers)
        # once stopped for deletion nothing restarts, so the phase is final, as a kubelet reports it
        policy = "Never" if self._halt.is_set() else self.restart_policy
        return pod_phase(policy, [r.view for r in self.containers], will_restart=restarting)

    def _status(self) -> Doc:
        views = [r.view for r in self.containers]
        ready = self.initialized and all(v.ready and v.running for v in views)
        started = any(v.running or v.exit_code is not None for v in views)
        at = now_rfc3339()
        completed = bool(views) and all(v.exit_code is not None for v in views) and not any(
            r.restart_at is not None for r in self.containers)
        conditions = pod_conditions(initialized=self.initialized, ready=ready, started=started,
                                    transitions=self._transitions, at=at, completed=completed)
        return pod_status(phase=self._phase(), start_time=self.start_time, conditions=conditions, containers=views,
                          init_containers=[r.view for r in self.inits])

    def _publish(self, status: Doc | None = None) -> None:
        """Patch the pod's status if it changed; a failed patch is retried on the next change or tick."""
        if self._gone or self._shutdown:
            return
        status = status or self._status()
        text = json.dumps(status, sort_keys=True)
        if text == self._last_status:
            return
        try:
            self.api.patch_pod_status(self.namespace, self.pod_name, status)
            self._last_status = text
        except Exception as exc:
            if getattr(exc, "status", None) == 404:
                self._gone = True
            else:
                say(f"pod {self.label}: status patch failed (retrying): {exc}")

    def _fail(self, reason: str, message: str) -> None:
        views = [r.view for r in self.containers]
        self._final = failed_pod_status(reason, message, views, self.start_time, now_rfc3339())
        self._publish(self._final)

    def _finish(self) -> None:
        """After a stop: processes ended, final status, the pod object deleted, its folder removed."""
        self._halt.wait()
        runs = [*self.inits, *self.containers]
        self._terminate(runs, self._grace)
        for run in runs:
            if run.attempt and run.attempt.pump:
                run.attempt.pump.wait(2.0)
        if self._shutdown:
            return
        self._publish(self._final)
        if not self._gone:
            try:
                self.api.delete_pod(self.namespace, self.pod_name, self.uid)
            except Exception as exc:
                say(f"pod {self.label}: delete failed: {exc}")
        shutil.rmtree(self.dir, ignore_errors=True)
        say(f"pod {self.label}: {'stopped, its pod object is gone' if self._gone else 'deleted'}")

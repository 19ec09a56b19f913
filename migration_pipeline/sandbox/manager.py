"""Bring a sandbox up, report on it, and take it down."""

from __future__ import annotations

import json
import shutil
import urllib.request
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from migration_pipeline.sandbox import engine, kafka, s3
from migration_pipeline.sandbox.catalog import DEFAULT_SOURCE, DEFAULT_TARGET, EngineRelease, resolve_release
from migration_pipeline.sandbox.errors import SandboxError
from migration_pipeline.sandbox.state import SandboxState, load, locked, save

ROLES = ("source", "target")
Progress = Callable[[str], None]


@dataclass(frozen=True)
class UpRequest:
    """What ``sandbox up`` should have running afterwards."""

    source: str | None = DEFAULT_SOURCE
    target: str | None = DEFAULT_TARGET
    kafka: bool = False
    # Kafka with a second listener, SASL_SSL (PLAIN, a self-made CA); implies ``kafka``.
    kafka_sasl: bool = False
    s3: bool = False
    source_settings: Mapping[str, str] | None = None
    target_settings: Mapping[str, str] | None = None
    heap: str = engine.DEFAULT_HEAP
    # A single-node Kubernetes control plane and a node that runs pods' commands as local processes.
    kubernetes: bool = False


def _quiet(_: str) -> None:
    return None


def up(request: UpRequest, name: str | None = None, progress: Progress = _quiet) -> SandboxState:
    """Start what ``request`` asks for that is not already running; reuse what is."""
    wanted: dict[str, tuple[EngineRelease, Mapping[str, str]]] = {}
    for role, spec, settings in (
        ("source", request.source, request.source_settings),
        ("target", request.target, request.target_settings),
    ):
        if spec:
            wanted[role] = (resolve_release(spec), dict(settings or {}))
    with locked(name):
        state = load(name)
        to_start: dict[str, tuple[EngineRelease, Mapping[str, str]]] = {}
        for role, (release, settings) in wanted.items():
            node = state.engines.get(role)
            if node and node.alive():
                if (node.engine, node.version, node.settings) != (release.engine, release.version, dict(settings)):
                    raise SandboxError(
                        f"sandbox {state.name!r} already runs {node.engine}:{node.version} as {role}; "
                        f"run 'migration sandbox down' first to start {release.spec}"
                    )
                progress(f"{role}: {node.engine} {node.version} already running at {node.url}")
                continue
            to_start[role] = (release, settings)
        # S3 first, so that an engine with the S3 repository plugin can be pointed at it.
        if request.s3:
            if state.s3 and state.s3.alive():
                progress(f"s3: already running at {state.s3.endpoint}")
            else:
                progress("s3: starting moto server")
                state.s3 = s3.start(state.root / "s3")
                save(state)
                progress(f"s3: ready at {state.s3.endpoint}")
        if to_start:
            _start_engines(state, to_start, progress, request.heap)
        if request.kafka or request.kafka_sasl:
            if state.kafka and state.kafka.alive():
                if request.kafka_sasl and state.kafka.sasl_facts() is None:
                    raise SandboxError(
                        f"sandbox {state.name!r} already runs Kafka at {state.kafka.bootstrap} without a SASL_SSL "
                        "listener; run 'migration sandbox down' first to start it with --kafka-sasl"
                    )
                progress(f"kafka: already running at {_kafka_addresses(state.kafka)}")
            else:
                progress("kafka: starting (KRaft, single node" + (", SASL_SSL listener)" if request.kafka_sasl
                                                                   else ")"))
                state.kafka = kafka.start(state.root / "kafka", sasl=request.kafka_sasl)
                save(state)
                progress(f"kafka: ready at {_kafka_addresses(state.kafka)}")
        if request.kubernetes:
            from migration_pipeline.sandbox.kubernetes import control_plane

            if state.kubernetes and state.kubernetes.alive():
                progress(f"kubernetes: already running at {state.kubernetes.server}")
            else:
                state.kubernetes = control_plane.start(state.root / "kubernetes", progress)
                save(state)
        return state


def _kafka_addresses(node: kafka.KafkaNode) -> str:
    facts = node.sasl_facts()
    return node.bootstrap + (f" (SASL_SSL at {facts['bootstrap']}, CA {facts['ca_file']})" if facts else "")


def _start_engines(
    state: SandboxState, to_start: Mapping[str, tuple[EngineRelease, Mapping[str, str]]], progress: Progress,
    heap: str,
) -> None:
    def start_one(role: str) -> engine.EngineNode:
        release, settings = to_start[role]
        progress(f"{role}: starting {release.engine} {release.version}")
        s3_endpoint = state.s3.endpoint if state.s3 and state.s3.alive() else None
        node = engine.start_node(release, state.root / role, role=role, extra_settings=settings,
                                 s3_endpoint=s3_endpoint, heap=heap)
        progress(f"{role}: ready at {node.url} (Java {node.java_major}, modules: {', '.join(node.modules)})")
        return node

    # Fetch and install first, one at a time (mvn shares its local repository), then start in parallel.
    for release, _ in to_start.values():
        from migration_pipeline.sandbox import distribution

        progress(f"installing {release.spec} (cached after the first time)")
        distribution.install(release)
    with ThreadPoolExecutor(max_workers=len(to_start)) as pool:
        futures = {role: pool.submit(start_one, role) for role in to_start}
        errors = []
        for role, future in futures.items():
            try:
                state.engines[role] = future.result()
            except Exception as exc:
                errors.append(exc)
        save(state)
    if errors:
        raise errors[0]


def _node_components(url: str) -> dict[str, list[str]]:
    try:
        with urllib.request.urlopen(f"{url}/_nodes/_local/plugins", timeout=5) as resp:
            nodes = json.loads(resp.read())["nodes"]
    except (OSError, ValueError, KeyError):
        return {}
    info: dict[str, Any] = next(iter(nodes.values()), {})
    return {
        "modules": sorted(m["name"] for m in info.get("modules", [])),
        "plugins": sorted(p["name"] for p in info.get("plugins", [])),
    }


def status(name: str | None = None) -> dict[str, Any]:
    """What the sandbox runs, whether each part is alive, and the modules and plugins each engine loaded."""
    state = load(name)
    out: dict[str, Any] = {"name": state.name, "root": str(state.root)}
    for role, node in state.engines.items():
        alive = node.alive()
        entry: dict[str, Any] = {"url": node.url, "engine": node.engine, "version": node.version,
                                 "repo_path": node.repo_path, "alive": alive, "pid": node.pid,
                                 "java": node.java_major, "log": str(node.log_path)}
        entry.update(_node_components(node.url) if alive else {"modules": node.modules, "plugins": node.plugins})
        out[role] = entry
    if state.kafka:
        out["kafka"] = {"bootstrap": state.kafka.bootstrap, "version": state.kafka.version,
                        "alive": state.kafka.alive(), "pid": state.kafka.pid}
        sasl = state.kafka.sasl_facts()
        if sasl:
            out["kafka"]["sasl"] = sasl
    if state.s3:
        out["s3"] = {"endpoint": state.s3.endpoint, "alive": state.s3.alive(), "pid": state.s3.pid}
    if state.kubernetes:
        kube = state.kubernetes
        out["kubernetes"] = {"server": kube.server, "kubeconfig": kube.kubeconfig, "version": kube.version,
                             "node": kube.node_name, "alive": kube.alive(), "components": kube.components()}
    return out


def restart(component: str, name: str | None = None) -> SandboxState:
    """Stop one running component (``source``, ``target`` or ``kafka``) and start it again on its data, ports and
    listeners (outage tests); the state is saved with the new process."""
    with locked(name):
        state = load(name)
        if component == "kafka" and state.kafka is not None:
            state.kafka = kafka.restart(state.kafka)
        elif component in state.engines:
            state.engines[component] = engine.restart_node(state.engines[component])
        else:
            raise SandboxError(f"sandbox {state.name!r} has no {component} to restart")
        save(state)
        return state


def down(name: str | None = None, keep_data: bool = False) -> list[str]:
    """Stop everything the sandbox started; returns what was stopped (empty when nothing ran)."""
    stopped: list[str] = []
    with locked(name):
        state = load(name)
        # Pods first: their processes may be talking to the engines and Kafka.
        if state.kubernetes:
            from migration_pipeline.sandbox.kubernetes import control_plane

            stopped.extend(control_plane.stop(state.kubernetes))
        for role, node in state.engines.items():
            if engine.stop_node(node):
                stopped.append(f"{role} ({node.engine} {node.version}, pid {node.pid})")
        if state.kafka and kafka.stop(state.kafka):
            stopped.append(f"kafka (pid {state.kafka.pid})")
        if state.s3 and s3.stop(state.s3):
            stopped.append(f"s3 (pid {state.s3.pid})")
        if keep_data:
            save(SandboxState(state.name, state.root))
    if not keep_data:
        shutil.rmtree(state.root, ignore_errors=True)
    return stopped


def running(name: str | None = None) -> SandboxState:
    """The state of a sandbox that must be running, or an error telling how to start one."""
    state = load(name)
    alive = {role: node for role, node in state.engines.items() if node.alive()}
    if not alive:
        raise SandboxError(f"no sandbox {state.name!r} is running; start one with 'migration sandbox up'")
    return state

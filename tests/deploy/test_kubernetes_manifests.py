"""deploy/kubernetes as `kubectl kustomize` renders it: the base and the sandbox overlay.

No cluster: the objects are checked as rendered, and each Deployment's container is run the way a kubelet would
start it, up to the program's own option parsing: the ConfigMap and Secret values resolved into its environment,
``$(VAR)`` expanded in its env values and args, then the real CLI (``workers.capture.cli``, ``workers.replay.cli``)
parses and validates everything, with only the final "run the server" call replaced.
"""

from __future__ import annotations

import ast
import importlib.metadata
import logging
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import typer
import yaml

from migration_pipeline.sandbox.kubernetes import launcher

REPO = Path(__file__).resolve().parents[2]
KUSTOMIZE = REPO / "deploy" / "kubernetes"
KUBECTL = shutil.which("kubectl")
NAMESPACE = "migration"
# The Secret a user creates (README.md): fake values for the required keys; the optional ones are left out, as a
# user without SASL or target passwords would.
SECRETS = {"PROXY_ADMIN_TOKEN": "test-admin-token"}

pytestmark = pytest.mark.skipif(KUBECTL is None, reason="kubectl (with its built-in kustomize) is not installed")

# What the sandbox's tests write (the overlay's sandbox.env): every key, loopback listeners on distinct ports.
SANDBOX_ENV = {
    "SOURCE_URL": "http://127.0.0.1:39200",
    "TARGET_URL": "http://127.0.0.1:39201",
    "KAFKA_BOOTSTRAP": "127.0.0.1:39092",
    "CAPTURE_TOPIC": "capture-sandbox",
    "REPLAY_GROUP": "replayer-sandbox",
    "PROXY_LISTEN": "127.0.0.1:39300",
    "PROXY_METRICS_LISTEN": "127.0.0.1:39301",
    "PROXY_ADMIN_LISTEN": "127.0.0.1:39302",
    "REPLAY_STATUS_DIR": "/tmp/sandbox-replay-status",
}

Objects = dict[tuple[str, str], dict[str, Any]]


def _render(root: Path) -> Objects:
    assert KUBECTL is not None
    proc = subprocess.run([KUBECTL, "kustomize", str(root)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    objects: Objects = {}
    for doc in yaml.safe_load_all(proc.stdout):
        key = (doc["kind"], doc["metadata"]["name"])
        assert key not in objects, f"{key} rendered twice"
        objects[key] = doc
    return objects


@pytest.fixture(scope="module")
def base() -> Objects:
    return _render(KUSTOMIZE / "base")


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Objects:
    # sandbox.env is generated and git-ignored: write it into a copy of deploy/kubernetes (base and overlays keep
    # their relative paths, so kustomize's load restrictions hold), never into the working tree.
    copy = tmp_path_factory.mktemp("kustomize") / "kubernetes"
    shutil.copytree(KUSTOMIZE, copy, ignore=shutil.ignore_patterns("sandbox.env"))
    overlay = copy / "overlays" / "sandbox"
    (overlay / "sandbox.env").write_text("".join(f"{k}={v}\n" for k, v in SANDBOX_ENV.items()))
    return _render(overlay)


@pytest.fixture(params=["base", "sandbox"])
def rendered(request: pytest.FixtureRequest) -> Objects:
    objects: Objects = request.getfixturevalue(request.param)
    return objects


def _of_kind(objects: Objects, kind: str) -> dict[str, dict[str, Any]]:
    return {name: obj for (k, name), obj in objects.items() if k == kind}


def _workloads(objects: Objects) -> dict[str, dict[str, Any]]:
    return {**_of_kind(objects, "Deployment"), **_of_kind(objects, "StatefulSet")}


def _container(workload: dict[str, Any]) -> dict[str, Any]:
    containers = workload["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1
    container: dict[str, Any] = containers[0]
    return container


# The objects --------------------------------------------------------------------------------------------------------

def test_base_renders_exactly_these_objects(base: Objects) -> None:
    assert set(base) == {
        ("Namespace", "migration"),
        ("ServiceAccount", "migration-dagster"), ("Role", "migration-dagster"), ("RoleBinding", "migration-dagster"),
        ("ServiceAccount", "migration-worker"), ("ServiceAccount", "capture-proxy"), ("ServiceAccount", "replayer"),
        ("ConfigMap", "migration-live"),
        ("Deployment", "capture-proxy"), ("Service", "capture-proxy"), ("PodDisruptionBudget", "capture-proxy"),
        ("Deployment", "replayer"), ("PodDisruptionBudget", "replayer"),
        ("StatefulSet", "kafka"), ("Service", "kafka"), ("Service", "kafka-headless"),
    }
    for (kind, name), obj in base.items():
        if kind != "Namespace":
            assert obj["metadata"].get("namespace") == NAMESPACE, f"{kind}/{name}"
    # The user creates the Secret; base never holds one.
    assert not _of_kind(base, "Secret")


def test_the_launcher_role_is_exactly_what_pipes_k8s_client_needs(base: Objects) -> None:
    def flat(rules: list[dict[str, Any]]) -> set[tuple[str, str, tuple[str, ...]]]:
        return {(group, resource, tuple(sorted(rule["verbs"])))
                for rule in rules for group in rule["apiGroups"] for resource in rule["resources"]}

    rules = flat(base["Role", "migration-dagster"]["rules"])
    assert rules == {
        ("", "pods", ("create", "delete", "get", "list", "watch")),
        ("", "pods/log", ("get",)),
        ("", "pods/status", ("get",)),
        ("", "events", ("list",)),
    }
    # The sandbox's launcher account (migration demo --kubernetes, the tests) has these same rights, no more.
    assert flat(launcher.LAUNCHER_RULES) == rules and launcher.LAUNCHER_ACCOUNT == "migration-dagster"
    assert all(not rule.get("resourceNames") for rule in base["Role", "migration-dagster"]["rules"])
    binding = base["RoleBinding", "migration-dagster"]
    assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "migration-dagster"}
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "migration-dagster", "namespace": NAMESPACE}]
    # The only binding: the worker, proxy and replayer accounts have no API rights, and no token mounted.
    assert list(_of_kind(base, "RoleBinding")) == ["migration-dagster"]
    assert not _of_kind(base, "ClusterRoleBinding")
    for account in ("migration-worker", "capture-proxy", "replayer"):
        assert base["ServiceAccount", account]["automountServiceAccountToken"] is False


def test_each_workload_runs_as_its_own_account_without_a_token(base: Objects) -> None:
    for name in ("capture-proxy", "replayer"):
        pod = base["Deployment", name]["spec"]["template"]["spec"]
        assert pod["serviceAccountName"] == name
        assert pod["automountServiceAccountToken"] is False
        # No Service links: KAFKA_* variables from the `kafka` Service must not reach programs reading KAFKA_*.
        assert pod["enableServiceLinks"] is False


def test_disruption_budgets_select_their_deployments_pods(base: Objects) -> None:
    budgets = _of_kind(base, "PodDisruptionBudget")
    for name, budget in budgets.items():
        selector = budget["spec"]["selector"]["matchLabels"]
        chosen = [w for w, obj in _workloads(base).items()
                  if selector.items() <= obj["spec"]["template"]["metadata"]["labels"].items()]
        assert chosen == [name], f"PodDisruptionBudget/{name} selects {chosen}"
        # The selector is the workload's own (immutable) one, not a label an overlay could change.
        assert selector == base["Deployment", name]["spec"]["selector"]["matchLabels"]
    assert budgets["capture-proxy"]["spec"]["minAvailable"] == 1
    assert base["Deployment", "capture-proxy"]["spec"]["replicas"] > 1, "minAvailable 1 with one replica blocks drains"
    assert budgets["replayer"]["spec"]["maxUnavailable"] == 1


def test_services_select_pods_and_target_declared_ports(base: Objects) -> None:
    for name, service in _of_kind(base, "Service").items():
        selector = service["spec"]["selector"]
        chosen = [w for w, obj in _workloads(base).items()
                  if selector.items() <= obj["spec"]["template"]["metadata"]["labels"].items()]
        assert len(chosen) == 1, f"Service/{name} selects {chosen}"
        declared = {p["name"]: p["containerPort"] for p in _container(base[_kind(base, chosen[0]), chosen[0]])["ports"]}
        for port in service["spec"]["ports"]:
            assert port["targetPort"] in declared, f"Service/{name} port {port['name']}"
            assert port["port"] == declared[port["targetPort"]]
    # The proxy's Service carries traffic and metrics, never the admin API (a cutover addresses each pod).
    assert {p["name"] for p in base["Service", "capture-proxy"]["spec"]["ports"]} == {"http", "metrics"}


def _kind(objects: Objects, name: str) -> str:
    return "Deployment" if ("Deployment", name) in objects else "StatefulSet"


def test_probes_point_at_declared_ports(base: Objects) -> None:
    probes_seen = 0
    for name, workload in _workloads(base).items():
        container = _container(workload)
        ports = {key for p in container.get("ports", []) for key in (p["name"], p["containerPort"])}
        for kind in ("startupProbe", "readinessProbe", "livenessProbe"):
            probe = container.get(kind)
            if probe is None:
                continue
            probes_seen += 1
            handler = probe.get("httpGet") or probe.get("tcpSocket")
            if handler is not None:
                assert handler["port"] in ports, f"{name} {kind} port {handler['port']}"
            else:
                assert probe["exec"]["command"][0] == "python", f"{name} {kind}"
    assert probes_seen >= 6
    proxy = _container(base["Deployment", "capture-proxy"])
    assert proxy["readinessProbe"]["httpGet"] == {"path": "/health", "port": "metrics"}
    assert proxy["livenessProbe"]["httpGet"] == {"path": "/health", "port": "metrics"}


def test_the_replayers_status_probe_tells_fresh_from_stale(base: Objects, tmp_path: Path) -> None:
    command = _container(base["Deployment", "replayer"])["livenessProbe"]["exec"]["command"]
    assert command == _container(base["Deployment", "replayer"])["startupProbe"]["exec"]["command"]
    status = tmp_path / "member.status.json"

    def probe() -> int:
        env = {**os.environ, "REPLAYER_STATUS_FILE": str(status)}
        return subprocess.run([sys.executable, *command[1:]], env=env, timeout=30).returncode

    assert probe() != 0, "no status file yet"
    status.write_text("{}")
    assert probe() == 0
    stale = time.time() - 600
    os.utime(status, (stale, stale))
    assert probe() == 1


def test_the_proxys_drain_fits_in_its_grace_period(base: Objects) -> None:
    pod = base["Deployment", "capture-proxy"]["spec"]["template"]["spec"]
    args = _container(base["Deployment", "capture-proxy"])["args"]
    shutdown = float(next(a.partition("=")[2] for a in args if a.startswith("--shutdown-timeout=")))
    pre_stop = _container(base["Deployment", "capture-proxy"])["lifecycle"]["preStop"]["sleep"]["seconds"]
    # Draining connections and then flushing Kafka may each take the shutdown timeout.
    assert pod["terminationGracePeriodSeconds"] >= pre_stop + 2 * shutdown


def test_containers_are_bounded_and_locked_down_in_base(base: Objects) -> None:
    for name, workload in _workloads(base).items():
        container = _container(workload)
        for side in ("requests", "limits"):
            assert set(container["resources"][side]) == {"cpu", "memory"}, f"{name} {side}"
        assert workload["spec"]["template"]["spec"]["securityContext"]["runAsNonRoot"] is True
        assert container["securityContext"]["allowPrivilegeEscalation"] is False
    for name in ("capture-proxy", "replayer"):
        container = _container(base["Deployment", name])
        assert container["image"] == "migration-assistant-worker:latest"
        assert container["securityContext"]["readOnlyRootFilesystem"] is True


def test_kafka_is_a_kraft_statefulset_behind_the_configured_bootstrap(base: Objects) -> None:
    kafka = base["StatefulSet", "kafka"]
    container = _container(kafka)
    assert container["image"] == "apache/kafka:3.9.1"
    headless = base["Service", kafka["spec"]["serviceName"]]
    assert headless["spec"]["clusterIP"] == "None"
    assert headless["spec"]["publishNotReadyAddresses"] is True
    env = {e["name"]: e for e in container["env"]}
    assert env["KAFKA_PROCESS_ROLES"]["value"] == "broker,controller"
    assert env["CLUSTER_ID"]["value"]
    assert env["KAFKA_NODE_ID"]["valueFrom"]["fieldRef"]["fieldPath"] == (
        "metadata.labels['apps.kubernetes.io/pod-index']")
    voters = env["KAFKA_CONTROLLER_QUORUM_VOTERS"]["value"].split(",")
    assert len(voters) == kafka["spec"]["replicas"]
    assert all(f".{headless['metadata']['name']}." in v for v in voters)
    claims = {c["metadata"]["name"] for c in kafka["spec"]["volumeClaimTemplates"]}
    assert {m["name"] for m in container["volumeMounts"]} <= claims
    assert env["KAFKA_LOG_DIRS"]["value"].startswith(container["volumeMounts"][0]["mountPath"] + "/")
    # The proxy and the replayers' KAFKA_BOOTSTRAP is the client Service's broker port.
    host, _, port = base["ConfigMap", "migration-live"]["data"]["KAFKA_BOOTSTRAP"].partition(":")
    assert any(p["port"] == int(port) for p in base["Service", host]["spec"]["ports"])
    assert base["Service", host]["spec"]["selector"] == kafka["spec"]["selector"]["matchLabels"]


def test_the_readme_documents_every_configmap_and_secret_key(base: Objects) -> None:
    readme = (KUSTOMIZE / "README.md").read_text()
    keys = set(base["ConfigMap", "migration-live"]["data"])
    for workload in _workloads(base).values():
        for entry in _container(workload).get("env", []):
            ref = entry.get("valueFrom", {}).get("secretKeyRef")
            if ref is not None:
                assert ref["name"] == "migration-secrets"
                keys.add(ref["key"])
    missing = sorted(k for k in keys if f"`{k}`" not in readme)
    assert missing == []
    # sandbox.env replaces the ConfigMap: its example must carry every key the base has.
    example = (KUSTOMIZE / "overlays" / "sandbox" / "sandbox.env.example").read_text()
    assert {line.partition("=")[0] for line in example.splitlines() if line and not line.startswith("#")} == set(
        base["ConfigMap", "migration-live"]["data"])
    assert set(SANDBOX_ENV) == set(base["ConfigMap", "migration-live"]["data"])


# The sandbox overlay ------------------------------------------------------------------------------------------------

def test_sandbox_overlay_scales_and_strips_what_local_processes_cannot_have(sandbox: Objects) -> None:
    assert sandbox["Deployment", "capture-proxy"]["spec"]["replicas"] == 1
    assert sandbox["Deployment", "replayer"]["spec"]["replicas"] == 2
    assert sandbox["StatefulSet", "kafka"]["spec"]["replicas"] == 0
    # Replaced, not merged: no base value (0.0.0.0 listeners, in-cluster names) is left over.
    assert sandbox["ConfigMap", "migration-live"]["data"] == SANDBOX_ENV
    assert sandbox["ConfigMap", "migration-live"]["metadata"]["namespace"] == NAMESPACE
    for name in ("capture-proxy", "replayer"):
        pod = sandbox["Deployment", name]["spec"]["template"]["spec"]
        container = _container(sandbox["Deployment", name])
        assert "securityContext" not in pod and "volumes" not in pod, name
        stripped = {"securityContext", "volumeMounts", "startupProbe", "livenessProbe", "lifecycle"}
        assert not stripped & set(container), name
        if name == "capture-proxy":
            # Readiness asked of the real metrics listener (sandbox.env's), by the node agent's exec probe.
            probe = container["readinessProbe"]
            assert "httpGet" not in probe and "PROXY_METRICS_LISTEN" in probe["exec"]["command"][-1]
        else:
            assert "readinessProbe" not in container
        # Everything else is the base's: the same program, args and environment.
        module = "workers.capture" if name == "capture-proxy" else "workers.replay"
        assert container["command"] == ["python", "-P", "-m", module]


def test_the_sandbox_env_file_is_not_committed() -> None:
    ignored = subprocess.run(["git", "check-ignore", "-q", "deploy/kubernetes/overlays/sandbox/sandbox.env"],
                             cwd=REPO, timeout=30)
    assert ignored.returncode == 0


# Each Deployment's command, parsed by the program's own CLI ---------------------------------------------------------

_REFERENCE = re.compile(r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)")


def expand(text: str, env: dict[str, str]) -> str:
    """The kubelet's ``$(VAR)`` expansion: defined variables replaced, ``$$`` an escaped ``$``, others kept."""
    def one(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        return env.get(match.group(1), match.group(0))
    return _REFERENCE.sub(one, text)


def container_environment(objects: Objects, container: dict[str, Any], pod_name: str) -> dict[str, str]:
    """The container's environment as the kubelet builds it: envFrom, then env in order, each value expanded
    against the variables before it; an optional key that is missing is left out, a required one fails."""
    env: dict[str, str] = {}
    for source in container.get("envFrom", []):
        env.update(objects["ConfigMap", source["configMapRef"]["name"]]["data"])
    for entry in container.get("env", []):
        if "value" in entry:
            env[entry["name"]] = expand(entry["value"], env)
            continue
        ref = entry["valueFrom"]
        if "fieldRef" in ref:
            env[entry["name"]] = {"metadata.name": pod_name, "metadata.namespace": NAMESPACE}[
                ref["fieldRef"]["fieldPath"]]
        elif "configMapKeyRef" in ref or "secretKeyRef" in ref:
            key_ref = ref.get("configMapKeyRef") or ref["secretKeyRef"]
            data = SECRETS if "secretKeyRef" in ref else objects["ConfigMap", key_ref["name"]]["data"]
            if key_ref["key"] in data:
                env[entry["name"]] = data[key_ref["key"]]
            else:
                assert key_ref.get("optional"), f"{entry['name']}: required key {key_ref['key']} is missing"
        else:
            raise AssertionError(f"{entry['name']}: unexpected valueFrom {ref}")
    return env


@pytest.fixture
def restore_logging() -> Iterator[None]:
    # Both CLIs reconfigure the root logger (basicConfig(force=True)); the rest of the session keeps its own.
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def run_cli(module: str, args: list[str], monkeypatch: pytest.MonkeyPatch) -> tuple[Any, list[Any]]:
    """The module's real typer command on ``args`` (environment already set); what would run is captured."""
    captured: list[Any] = []
    if module == "workers.capture":
        from workers.capture import cli as capture_cli
        from workers.capture import server

        monkeypatch.setattr(server, "main", captured.append)
        command = typer.main.get_command(capture_cli.app())
    else:
        from workers.replay import cli as replay_cli
        from workers.replay import run

        def run_with_tuples(options: Any) -> dict[str, Any]:
            captured.append(options)
            return {"stats": {"transactions": 0, "documents": 0, "dead_letters": 0}}

        monkeypatch.setattr(run, "run_with_tuples", run_with_tuples)
        # What `python -m workers.replay` builds (typer.run).
        app = typer.Typer(add_completion=False)
        app.command()(replay_cli.replay)
        command = typer.main.get_command(app)
    result = command.main(args=args, prog_name=f"python -m {module}", standalone_mode=False)
    return result, captured


def start_container(objects: Objects, name: str, monkeypatch: pytest.MonkeyPatch,
                    edit: Callable[[list[str]], list[str]] = lambda args: args,
                    ) -> tuple[Any, list[Any], dict[str, str]]:
    """Start the Deployment's container as far as its CLI's validation: (exit code, what would run, environment)."""
    container = _container(objects["Deployment", name])
    command = container["command"]
    assert command[:3] == ["python", "-P", "-m"] and len(command) == 4, command
    pod_name = f"{name}-5d8f7c9b6-x2k4q"
    env = container_environment(objects, container, pod_name)
    args = [expand(a, env) for a in container["args"]]
    unresolved = [a for a in [*args, *env.values()] if "$(" in a]
    assert unresolved == [], "a $(VAR) names no variable defined before it"
    for key in list(os.environ):
        if key.startswith(("CAPTURE_PROXY_", "REPLAYER_")):
            monkeypatch.delenv(key)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    result, captured = run_cli(command[3], edit(args), monkeypatch)
    return result, captured, env | {"POD_NAME": pod_name}


def _host_port(address: str) -> tuple[str, int]:
    host, _, port = address.rpartition(":")
    return host, int(port)


@pytest.mark.usefixtures("restore_logging")
def test_the_capture_proxy_command_parses(rendered: Objects, monkeypatch: pytest.MonkeyPatch,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    result, captured, env = start_container(rendered, "capture-proxy", monkeypatch)
    assert result in (None, 0) and len(captured) == 1, capsys.readouterr().err
    options = captured[0]
    assert options.destination.url == env["SOURCE_URL"]
    assert options.kafka.brokers == env["KAFKA_BOOTSTRAP"] and options.kafka.topic == env["CAPTURE_TOPIC"]
    assert options.switch_target is not None and options.switch_target.url == env["TARGET_URL"]
    assert options.node_id == env["POD_NAME"]
    assert options.admin_token_env == "PROXY_ADMIN_TOKEN"
    listeners = {"http": (options.listen_host, options.listen_port),
                 "metrics": (options.metrics_host, options.metrics_port),
                 "admin": (options.admin_host, options.admin_port)}
    assert listeners == {name: _host_port(env[key]) for name, key in (
        ("http", "PROXY_LISTEN"), ("metrics", "PROXY_METRICS_LISTEN"), ("admin", "PROXY_ADMIN_LISTEN"))}
    if rendered["ConfigMap", "migration-live"]["data"] == SANDBOX_ENV:
        # One host network: loopback only, and no two listeners on one port.
        assert {host for host, _ in listeners.values()} == {"127.0.0.1"}
        assert len({port for _, port in listeners.values()}) == 3
    else:
        # The kubelet's probes and the Service reach the pod IP: every listener on all interfaces, on the
        # container's declared port of the same name.
        declared = {p["name"]: p["containerPort"] for p in _container(rendered["Deployment", "capture-proxy"])["ports"]}
        assert listeners == {name: ("0.0.0.0", port) for name, port in declared.items()}


@pytest.mark.usefixtures("restore_logging")
def test_the_replayer_command_parses(rendered: Objects, monkeypatch: pytest.MonkeyPatch,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    result, captured, env = start_container(rendered, "replayer", monkeypatch)
    assert result in (None, 0) and len(captured) == 1, capsys.readouterr().err
    options = captured[0]
    assert options.brokers == env["KAFKA_BOOTSTRAP"] and options.topic == env["CAPTURE_TOPIC"]
    assert options.group_id == env["REPLAY_GROUP"]
    assert options.target.endpoint.rstrip("/") == env["TARGET_URL"]
    # Each member is its pod; each writes its own status file.
    assert options.member == env["POD_NAME"]
    assert options.status_file == f"{env['REPLAY_STATUS_DIR']}/{env['POD_NAME']}.status.json"
    container = _container(rendered["Deployment", "replayer"])
    if container.get("securityContext", {}).get("readOnlyRootFilesystem"):
        mounts = [m["mountPath"] for m in container["volumeMounts"]]
        assert os.path.dirname(options.status_file) in mounts, "the status file must be on a writable volume"


@pytest.mark.usefixtures("restore_logging")
@pytest.mark.parametrize(("name", "drop"), [("capture-proxy", "--destination="), ("replayer", "--target-endpoint=")])
def test_the_cli_check_can_fail(base: Objects, monkeypatch: pytest.MonkeyPatch, name: str, drop: str) -> None:
    """The harness above is not vacuous: the same container without a required flag is refused by its CLI."""
    result, captured, _ = start_container(base, name, monkeypatch,
                                          edit=lambda args: [a for a in args if not a.startswith(drop)])
    assert captured == [] and result not in (None, 0)


# The image ----------------------------------------------------------------------------------------------------------

def _third_party_imports(packages: tuple[str, ...]) -> set[str]:
    """Top-level non-stdlib modules imported by ``packages`` and every workers module they import, transitively."""
    seen: set[Path] = set()
    todo = [p for package in packages for p in (REPO / package.replace(".", "/")).rglob("*.py")]
    found: set[str] = set()
    while todo:
        path = todo.pop()
        if path in seen:
            continue
        seen.add(path)
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
            else:
                continue
            for name in names:
                top = name.split(".")[0]
                if top == "workers":
                    module = REPO / name.replace(".", "/")
                    todo += [module.with_suffix(".py")] if module.with_suffix(".py").is_file() else (
                        [module / "__init__.py"] if (module / "__init__.py").is_file() else [])
                elif top not in sys.stdlib_module_names:
                    found.add(top)
    return found


def test_the_worker_image_can_run_the_proxy_and_the_replayer() -> None:
    dockerfile = (REPO / "deploy" / "docker" / "worker.Dockerfile").read_text()
    assert "COPY workers/ /app/workers/" in dockerfile
    # `python -P` leaves the working directory off sys.path: the copied package must be on PYTHONPATH.
    assert re.search(r"^ENV .*PYTHONPATH=/app\b", dockerfile, re.MULTILINE)
    pip_lines = [line for line in dockerfile.replace("\\\n", " ").splitlines() if line.startswith("RUN pip install")]
    installed = {re.split(r"[<>=!\[]", req, maxsplit=1)[0].lower().replace("_", "-")
                 for line in pip_lines for req in re.findall(r'"([^"]+)"', line)}
    assert "dagster-pipes" in installed
    # A distribution counts if the Dockerfile names it or one it names requires it.
    reachable = set(installed)
    for dist in installed:
        for requirement in importlib.metadata.requires(dist) or []:
            if "extra ==" not in requirement:
                reachable.add(re.split(r"[ <>=!;\[(~]", requirement, maxsplit=1)[0].lower().replace("_", "-"))
    providers = importlib.metadata.packages_distributions()
    missing = {}
    for module in _third_party_imports(("workers.capture", "workers.replay")):
        dists = {d.lower().replace("_", "-") for d in providers.get(module, [])}
        assert dists, f"{module}: not installed in this venv"
        if not dists & reachable:
            missing[module] = sorted(dists)
    assert missing == {}

"""deploy/kubernetes applied to the sandbox's real API server: the base validated server-side (every object, the
Kafka StatefulSet included), the sandbox overlay applied for real, and its capture proxy and replayer pods run end to
end on the sandbox's node: writes sent to the proxy pod reach the source, are captured to Kafka and replayed onto the
target by the two replayer pods of one consumer group."""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import kubernetes
import pytest
import requests
import yaml

from migration_pipeline.sandbox.kubernetes import launcher
from migration_pipeline.sandbox.processes import free_port
from migration_pipeline.sandbox.state import SandboxState
from tests.conftest import unique

REPO = Path(__file__).resolve().parents[2]
KUBECTL = shutil.which("kubectl")
NAMESPACE = "migration"

pytestmark = pytest.mark.skipif(KUBECTL is None, reason="kubectl (with its built-in kustomize) is not installed")


def _kubectl(kubeconfig: str, *args: str, stdin: str | None = None, check: bool = True) -> str:
    assert KUBECTL is not None
    proc = subprocess.run([KUBECTL, "--kubeconfig", kubeconfig, *args], input=stdin, capture_output=True, text=True,
                          timeout=180)
    if check:
        assert proc.returncode == 0, f"kubectl {' '.join(args)}: {proc.stderr}"
    return proc.stdout


def _render(root: Path) -> str:
    assert KUBECTL is not None
    return subprocess.run([KUBECTL, "kustomize", str(root)], capture_output=True, text=True, check=True).stdout


@pytest.fixture
def overlay(kube_sandbox: SandboxState, tmp_path: Path) -> tuple[Path, dict[str, str]]:
    copy = tmp_path / "kubernetes"
    shutil.copytree(REPO / "deploy" / "kubernetes", copy)
    assert kube_sandbox.kafka is not None
    env = {
        "SOURCE_URL": kube_sandbox.engines["source"].url, "TARGET_URL": kube_sandbox.engines["target"].url,
        "KAFKA_BOOTSTRAP": kube_sandbox.kafka.bootstrap, "CAPTURE_TOPIC": unique("capture"),
        "REPLAY_GROUP": unique("replayers"), "PROXY_LISTEN": f"127.0.0.1:{free_port()}",
        "PROXY_METRICS_LISTEN": f"127.0.0.1:{free_port()}", "PROXY_ADMIN_LISTEN": f"127.0.0.1:{free_port()}",
        "REPLAY_STATUS_DIR": str(tmp_path / "replay-status"),
    }
    (copy / "overlays" / "sandbox" / "sandbox.env").write_text("".join(f"{k}={v}\n" for k, v in env.items()))
    return copy, env


def test_manifests_apply_and_the_proxy_and_replayer_pods_carry_writes_to_the_target(
        kube_sandbox: SandboxState, overlay: tuple[Path, dict[str, str]]) -> None:
    assert kube_sandbox.kubernetes is not None
    kubeconfig = kube_sandbox.kubernetes.kubeconfig
    root, env = overlay
    base = _render(root / "base")
    kinds = sorted({doc["kind"] for doc in yaml.safe_load_all(base)})
    assert {"Deployment", "StatefulSet", "PodDisruptionBudget", "Role", "Service"} <= set(kinds)
    api = kubernetes.client.CoreV1Api(launcher.admin_api(kube_sandbox.kubernetes))
    # From an empty namespace: other tests of the session (the demo's) use the same one for their own launcher.
    _kubectl(kubeconfig, "delete", "namespace", NAMESPACE, "--ignore-not-found", "--wait=true", "--timeout=120s")
    try:
        sandbox = _render(root / "overlays" / "sandbox")
        applied = _kubectl(kubeconfig, "apply", "--server-side", "-f", "-", stdin=sandbox)
        assert "deployment.apps/capture-proxy serverside-applied" in applied
        # Every object of the base, as a user applies it, validated by the API server without being kept (a dry run
        # needs the namespace, which the overlay's apply made).
        dry = _kubectl(kubeconfig, "apply", "--server-side", "--dry-run=server", "-f", "-", stdin=base)
        assert dry.count("(server dry run)") == len(list(yaml.safe_load_all(base))), dry
        _kubectl(kubeconfig, "-n", NAMESPACE, "create", "secret", "generic", "migration-secrets",
                 "--from-literal=PROXY_ADMIN_TOKEN=sandbox-admin-token")
        for deployment in ("capture-proxy", "replayer"):
            _kubectl(kubeconfig, "-n", NAMESPACE, "rollout", "status", f"deployment/{deployment}", "--timeout=120s")
        pods = api.list_namespaced_pod(NAMESPACE).items
        assert sorted(p.metadata.labels["app.kubernetes.io/name"] for p in pods) == [
            "capture-proxy", "replayer", "replayer"], [p.metadata.name for p in pods]

        index = unique("through-pods")
        proxy = f"http://{env['PROXY_LISTEN']}"
        for i in range(20):
            r = requests.put(f"{proxy}/{index}/_doc/{i}", json={"n": i, "via": "proxy pod"}, timeout=30)
            assert r.status_code in (200, 201), r.text
        requests.post(f"{env['SOURCE_URL']}/{index}/_refresh", timeout=30).raise_for_status()
        assert requests.get(f"{env['SOURCE_URL']}/{index}/_count", timeout=10).json()["count"] == 20
        target_count = _wait_for_count(env["TARGET_URL"], index, 20, timeout_s=90)
        assert target_count == 20
        doc = requests.get(f"{env['TARGET_URL']}/{index}/_doc/7", timeout=10).json()
        assert doc["_source"] == {"n": 7, "via": "proxy pod"}
        # The kubelet API's logs, as `kubectl logs` reads them through the API server.
        logs = _kubectl(kubeconfig, "-n", NAMESPACE, "logs", "deployment/capture-proxy")
        assert logs.strip(), "the proxy pod's log is empty"
        health = requests.get(f"http://{env['PROXY_METRICS_LISTEN']}/metrics", timeout=10)
        assert health.status_code == 200
    finally:
        _kubectl(kubeconfig, "delete", "namespace", NAMESPACE, "--wait=true", "--timeout=120s", check=False)
    assert not _pods_left(api)


def _wait_for_count(url: str, index: str, expected: int, timeout_s: float) -> int:
    deadline = time.monotonic() + timeout_s
    count = -1
    while time.monotonic() < deadline:
        requests.post(f"{url}/{index}/_refresh", timeout=30)
        r = requests.get(f"{url}/{index}/_count", timeout=10)
        if r.status_code == 200:
            count = int(r.json()["count"])
            if count >= expected:
                return count
        time.sleep(1)
    return count


def _pods_left(api: Any) -> list[str]:
    return [p.metadata.name for p in api.list_namespaced_pod(NAMESPACE).items]

"""What Dagster needs on the sandbox cluster to run workers as pods: a namespace, a service account with only the
launcher's rights (the same as deploy/kubernetes/base/rbac.yaml's Role, checked by its test), and a kubeconfig holding
that account's token."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from migration_pipeline.sandbox.kubernetes.control_plane import KubernetesCluster

LAUNCHER_ACCOUNT = "migration-dagster"
WORKER_ACCOUNT = "migration-worker"
# What PipesK8sClient does with pods, and no more: create them, follow them and their logs, delete them.
LAUNCHER_RULES: list[dict[str, Any]] = [
    {"apiGroups": [""], "resources": ["pods"], "verbs": ["create", "get", "list", "watch", "delete"]},
    {"apiGroups": [""], "resources": ["pods/log", "pods/status"], "verbs": ["get"]},
    {"apiGroups": [""], "resources": ["events"], "verbs": ["list"]},
]
TOKEN_SECONDS = 7 * 24 * 3600


def admin_api(cluster: KubernetesCluster) -> Any:
    import kubernetes

    return kubernetes.config.new_client_from_config(cluster.kubeconfig)


def _apply(api_client: Any, namespace: str, objects: list[dict[str, Any]]) -> None:
    """Create each object, or leave the one already there (server-side apply would need the dynamic client's
    field manager; the objects here never change)."""
    import kubernetes
    from kubernetes.client.exceptions import ApiException

    for obj in objects:
        try:
            kubernetes.utils.create_from_dict(api_client, obj, namespace=namespace)
        except kubernetes.utils.FailToCreateError as exc:
            if not all(isinstance(e, ApiException) and e.status == 409 for e in exc.api_exceptions):
                raise


def launcher_objects(namespace: str) -> list[dict[str, Any]]:
    """The namespace, both service accounts, the launcher's Role and its binding."""
    meta = {"namespace": namespace}
    return [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}},
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": LAUNCHER_ACCOUNT, **meta}},
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": WORKER_ACCOUNT, **meta},
         "automountServiceAccountToken": False},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
         "metadata": {"name": LAUNCHER_ACCOUNT, **meta}, "rules": LAUNCHER_RULES},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
         "metadata": {"name": LAUNCHER_ACCOUNT, **meta},
         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": LAUNCHER_ACCOUNT},
         "subjects": [{"kind": "ServiceAccount", "name": LAUNCHER_ACCOUNT, "namespace": namespace}]},
    ]


def prepare(cluster: KubernetesCluster, namespace: str = "migration") -> Path:
    """Create the launcher's objects in ``namespace`` and return a kubeconfig for its service account."""
    import kubernetes

    api_client = admin_api(cluster)
    _apply(api_client, namespace, launcher_objects(namespace))
    core = kubernetes.client.CoreV1Api(api_client)
    request = kubernetes.client.AuthenticationV1TokenRequest(
        spec=kubernetes.client.V1TokenRequestSpec(audiences=[], expiration_seconds=TOKEN_SECONDS))
    token = core.create_namespaced_service_account_token(LAUNCHER_ACCOUNT, namespace, request).status.token
    admin = yaml.safe_load(Path(cluster.kubeconfig).read_text())
    admin["users"] = [{"name": LAUNCHER_ACCOUNT, "user": {"token": token}}]
    admin["contexts"] = [{"name": "sandbox", "context": {"cluster": "sandbox", "user": LAUNCHER_ACCOUNT,
                                                         "namespace": namespace}}]
    path = Path(cluster.folder) / f"{namespace}-launcher.kubeconfig"
    path.write_text(yaml.safe_dump(admin, sort_keys=False))
    path.chmod(0o600)
    return path

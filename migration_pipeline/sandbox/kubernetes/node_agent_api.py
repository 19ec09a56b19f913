"""The node agent's API calls, as plain JSON dicts (camelCase, as the server sends them).

The generated ``kubernetes`` models are bypassed (``_preload_content=False``): the agent passes documents through
to status patches, and the dicts keep the exact field names the rest of the agent uses.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from kubernetes import client, config
from kubernetes.client.rest import ApiException

from migration_pipeline.sandbox.kubernetes.node_agent_spec import decode_config_map, decode_secret

Doc = dict[str, Any]
TIMEOUT = (5, 30)  # (connect, read) seconds for ordinary calls
WATCH_SECONDS = 240


def is_status(exc: Exception, *codes: int) -> bool:
    return isinstance(exc, ApiException) and exc.status in codes


class NodeApi:
    """What a node may do with its node credentials (the Node authorizer allows no more)."""

    def __init__(self, kubeconfig: str) -> None:
        configuration = client.Configuration()
        config.load_kube_config(config_file=kubeconfig, client_configuration=configuration)
        configuration.connection_pool_maxsize = 32  # one pod thread, log reads and the watch share the pool
        self.server = str(configuration.host)
        self._client = client.ApiClient(configuration)
        self.core = client.CoreV1Api(self._client)
        self.coordination = client.CoordinationV1Api(self._client)

    @staticmethod
    def _json(response: Any) -> Doc:
        return dict(json.loads(response.data))

    # ---- pods ---------------------------------------------------------------------------------------------------

    def list_pods(self, node: str) -> Doc:
        return self._json(self.core.list_pod_for_all_namespaces(
            field_selector=f"spec.nodeName={node}", _preload_content=False, _request_timeout=TIMEOUT))

    def watch_pods(self, node: str, resource_version: str) -> Iterator[Doc]:
        """Watch events until the server ends the watch; raises on errors (the caller re-lists)."""
        response = self.core.list_pod_for_all_namespaces(
            field_selector=f"spec.nodeName={node}", watch=True, resource_version=resource_version,
            allow_watch_bookmarks=True, timeout_seconds=WATCH_SECONDS, _preload_content=False,
            _request_timeout=(5, WATCH_SECONDS + 30))
        try:
            buffer = b""
            for chunk in response.stream(65536):
                buffer += chunk
                while b"\n" in buffer:
                    line, buffer = buffer.split(b"\n", 1)
                    if line.strip():
                        yield dict(json.loads(line))
        finally:
            response.release_conn()

    def read_pod(self, namespace: str, name: str) -> Doc | None:
        try:
            return self._json(self.core.read_namespaced_pod(name, namespace, _preload_content=False,
                                                            _request_timeout=TIMEOUT))
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise

    def patch_pod_status(self, namespace: str, name: str, status: Doc) -> None:
        self.core.patch_namespaced_pod_status(name, namespace, {"status": status}, _preload_content=False,
                                              _request_timeout=TIMEOUT)

    def delete_pod(self, namespace: str, name: str, uid: str) -> None:
        """Finish a graceful deletion (grace 0, this very pod only); gone already is fine."""
        body = {"gracePeriodSeconds": 0, "preconditions": {"uid": uid}}
        try:
            self.core.delete_namespaced_pod(name, namespace, body=body, grace_period_seconds=0,
                                            _preload_content=False, _request_timeout=TIMEOUT)
        except ApiException as exc:
            if exc.status not in (404, 409):
                raise

    # ---- what pods reference --------------------------------------------------------------------------------------

    def secret(self, namespace: str, name: str) -> dict[str, bytes] | None:
        try:
            return decode_secret(self._json(self.core.read_namespaced_secret(
                name, namespace, _preload_content=False, _request_timeout=TIMEOUT)))
        except ApiException as exc:
            if exc.status in (403, 404):  # the Node authorizer answers 403 for an object no pod references yet
                return None
            raise

    def config_map(self, namespace: str, name: str) -> dict[str, bytes] | None:
        try:
            return decode_config_map(self._json(self.core.read_namespaced_config_map(
                name, namespace, _preload_content=False, _request_timeout=TIMEOUT)))
        except ApiException as exc:
            if exc.status in (403, 404):
                return None
            raise

    def claim(self, namespace: str, name: str) -> Doc | None:
        try:
            return self._json(self.core.read_namespaced_persistent_volume_claim(
                name, namespace, _preload_content=False, _request_timeout=TIMEOUT))
        except ApiException as exc:
            if exc.status in (403, 404):
                return None
            raise

    def volume(self, name: str) -> Doc | None:
        try:
            return self._json(self.core.read_persistent_volume(name, _preload_content=False,
                                                               _request_timeout=TIMEOUT))
        except ApiException as exc:
            if exc.status in (403, 404):
                return None
            raise

    def token(self, pod: Doc, audience: str | None, seconds: int) -> str | None:
        """A service-account token bound to ``pod`` (what the kubelet writes into kube-api-access volumes)."""
        meta = pod["metadata"]
        spec: Doc = {"expirationSeconds": max(seconds, 600),
                     "boundObjectRef": {"kind": "Pod", "apiVersion": "v1", "name": meta["name"], "uid": meta["uid"]}}
        if audience:
            spec["audiences"] = [audience]
        account = pod["spec"].get("serviceAccountName") or "default"
        response = self.core.create_namespaced_service_account_token(
            account, meta["namespace"], {"spec": spec}, _preload_content=False, _request_timeout=TIMEOUT)
        return str(self._json(response)["status"]["token"])

    # ---- the node and its lease ---------------------------------------------------------------------------------

    def read_node(self, name: str) -> Doc | None:
        try:
            return self._json(self.core.read_node(name, _preload_content=False, _request_timeout=TIMEOUT))
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise

    def create_node(self, node: Doc) -> Doc:
        return self._json(self.core.create_node(node, _preload_content=False, _request_timeout=TIMEOUT))

    def patch_node_status(self, name: str, status: Doc) -> None:
        self.core.patch_node_status(name, {"status": status}, _preload_content=False, _request_timeout=TIMEOUT)

    def patch_node_labels(self, name: str, labels: dict[str, str]) -> None:
        self.core.patch_node(name, {"metadata": {"labels": labels}}, _preload_content=False,
                             _request_timeout=TIMEOUT)

    def renew_lease(self, lease: Doc) -> None:
        """Replace the node's Lease, creating it the first time."""
        name, namespace = lease["metadata"]["name"], lease["metadata"]["namespace"]
        try:
            current = self._json(self.coordination.read_namespaced_lease(
                name, namespace, _preload_content=False, _request_timeout=TIMEOUT))
        except ApiException as exc:
            if exc.status != 404:
                raise
            self.coordination.create_namespaced_lease(namespace, lease, _preload_content=False,
                                                      _request_timeout=TIMEOUT)
            return
        lease["metadata"]["resourceVersion"] = current["metadata"]["resourceVersion"]
        self.coordination.replace_namespaced_lease(name, namespace, lease, _preload_content=False,
                                                   _request_timeout=TIMEOUT)

"""Turn a container's spec into what the node agent runs: its environment and argv (volumes: ``node_agent_volumes``).

Pure functions over the pod as the API returns it (a camelCase dict). Everything that needs the API (Secrets,
ConfigMaps, claims, tokens) comes in through :class:`Lookups`, so the rules can be tested without a cluster.
"""

from __future__ import annotations

import base64
import os
import re
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

Doc = dict[str, Any]
# (name) -> the object's keys and their bytes, or None when it does not exist.
ObjectLookup = Callable[[str], "dict[str, bytes] | None"]

CONTAINER_CONFIG_ERROR = "CreateContainerConfigError"
ENV_NAME = re.compile(r"^[-._a-zA-Z][-._a-zA-Z0-9]*$")


class PodSpecError(Exception):
    """The pod cannot start (yet). ``retry`` keeps it Pending and tries again; otherwise the pod fails."""

    def __init__(self, reason: str, message: str, *, retry: bool) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message
        self.retry = retry


def missing(message: str) -> PodSpecError:
    """A reference a kubelet would also wait for (a Secret or key not there yet)."""
    return PodSpecError(CONTAINER_CONFIG_ERROR, message, retry=True)


@dataclass(frozen=True)
class Lookups:
    """The API reads a pod's spec depends on, bound to the pod's namespace."""

    namespace: str
    secret: ObjectLookup
    config_map: ObjectLookup
    # claim name -> host folder of its bound PersistentVolume; raises PodSpecError(retry=True) until bound
    claim_path: Callable[[str], str]
    # (audience or None, expirationSeconds) -> a service-account token bound to the pod, or None
    token: Callable[[str | None, int], str | None] = lambda _audience, _seconds: None


# ---- $(VAR) expansion and environment -------------------------------------------------------------------------

def expand(text: str, env: Mapping[str, str]) -> str:
    """Kubernetes' ``$(VAR)`` expansion: defined names are replaced, ``$$`` escapes, anything else stays as written."""
    out: list[str] = []
    i = 0
    while i < len(text):
        ch = text[i]
        if ch != "$" or i + 1 >= len(text):
            out.append(ch)
            i += 1
            continue
        nxt = text[i + 1]
        if nxt == "$":
            out.append("$")
            i += 2
        elif nxt == "(":
            end = text.find(")", i + 2)
            if end < 0:  # unclosed: kept literally, like the kubelet
                out.append(text[i:])
                break
            name = text[i + 2:end]
            out.append(env[name] if name in env else text[i:end + 1])
            i = end + 1
        else:
            out.append(ch + nxt)
            i += 2
    return "".join(out)


def base_env(pod: Doc, *, tmpdir: str, api_server: str, home: str | None = None) -> dict[str, str]:
    """What every container starts from; never the agent's own environment (it holds the node's credentials)."""
    from urllib.parse import urlsplit

    url = urlsplit(api_server)
    return {
        "PATH": f"{os.path.dirname(sys.executable)}:/usr/local/bin:/usr/bin:/bin",
        "HOME": home or os.environ.get("HOME", "/root"),
        "LANG": "C.UTF-8",
        "TMPDIR": tmpdir,
        "HOSTNAME": pod["metadata"]["name"],
        "KUBERNETES_SERVICE_HOST": url.hostname or "127.0.0.1",
        "KUBERNETES_SERVICE_PORT": str(url.port or 443),
        "KUBERNETES_SERVICE_PORT_HTTPS": str(url.port or 443),
    }


def field_value(pod: Doc, path: str) -> str:
    """``fieldRef.fieldPath`` as the downward API defines it (this node is always 127.0.0.1)."""
    meta = pod.get("metadata", {})
    simple = {
        "metadata.name": meta.get("name", ""),
        "metadata.namespace": meta.get("namespace", ""),
        "metadata.uid": meta.get("uid", ""),
        "spec.nodeName": pod.get("spec", {}).get("nodeName", ""),
        "spec.serviceAccountName": pod.get("spec", {}).get("serviceAccountName", ""),
        "status.podIP": "127.0.0.1",
        "status.podIPs": "127.0.0.1",
        "status.hostIP": "127.0.0.1",
        "status.hostIPs": "127.0.0.1",
    }
    if path in simple:
        return str(simple[path])
    match = re.fullmatch(r"metadata\.(labels|annotations)\['(.+)'\]", path)
    if match:
        return str(meta.get(match.group(1), {}).get(match.group(2), ""))
    if path in ("metadata.labels", "metadata.annotations"):
        items = meta.get(path.split(".")[1], {}) or {}
        return "\n".join(f'{k}="{v}"' for k, v in sorted(items.items()))
    raise PodSpecError("UnsupportedFieldRef", f"fieldRef {path!r} is not supported on the sandbox node", retry=False)


def _key_ref(ref: Doc, kind: str, lookup: ObjectLookup, namespace: str) -> str | None:
    data = lookup(ref["name"])
    optional = bool(ref.get("optional"))
    if data is None:
        if optional:
            return None
        raise missing(f'{kind.lower()} "{ref["name"]}" not found')
    if ref["key"] not in data:
        if optional:
            return None
        raise missing(f"couldn't find key {ref['key']} in {kind} {namespace}/{ref['name']}")
    return data[ref["key"]].decode("utf-8", errors="replace")


def _env_from(source: Doc, lookups: Lookups) -> dict[str, str]:
    if "secretRef" in source:
        ref, kind, lookup = source["secretRef"], "Secret", lookups.secret
    elif "configMapRef" in source:
        ref, kind, lookup = source["configMapRef"], "ConfigMap", lookups.config_map
    else:
        return {}
    data = lookup(ref["name"])
    if data is None:
        if ref.get("optional"):
            return {}
        raise missing(f'{kind.lower()} "{ref["name"]}" not found')
    prefix = source.get("prefix", "")
    # Keys that are not valid variable names are skipped, as the kubelet does.
    return {prefix + k: v.decode("utf-8", errors="replace") for k, v in data.items() if ENV_NAME.match(prefix + k)}


def container_env(container: Doc, pod: Doc, lookups: Lookups, base: Mapping[str, str]) -> dict[str, str]:
    """The container's environment: ``base``, then ``envFrom``, then ``env`` (each value expanded in order)."""
    env = dict(base)
    for source in container.get("envFrom", []) or []:
        env.update(_env_from(source, lookups))
    for var in container.get("env", []) or []:
        value = _env_value(var, pod, lookups, env)
        if value is not None:
            env[var["name"]] = value
    return env


def _env_value(var: Doc, pod: Doc, lookups: Lookups, env: Mapping[str, str]) -> str | None:
    if "valueFrom" not in var:
        return expand(var.get("value", "") or "", env)
    source = var["valueFrom"]
    if "secretKeyRef" in source:
        return _key_ref(source["secretKeyRef"], "Secret", lookups.secret, lookups.namespace)
    if "configMapKeyRef" in source:
        return _key_ref(source["configMapKeyRef"], "ConfigMap", lookups.config_map, lookups.namespace)
    if "fieldRef" in source:
        return field_value(pod, source["fieldRef"]["fieldPath"])
    return None  # resourceFieldRef: the sandbox node sets no resource limits, so there is nothing true to say


def command_line(container: Doc, env: Mapping[str, str]) -> list[str]:
    """``command`` + ``args``, expanded; a container that relies on its image's entrypoint cannot run here."""
    command = container.get("command") or []
    if not command:
        raise PodSpecError(
            "NoCommand",
            f"container {container['name']!r} has no command: the sandbox node runs pod commands as local processes "
            "(images are not available) and needs the container's `command`",
            retry=False,
        )
    return [expand(part, env) for part in [*command, *(container.get("args") or [])]]


def decode_secret(obj: Doc) -> dict[str, bytes]:
    """A Secret's ``data`` (base64) as bytes."""
    return {k: base64.b64decode(v) for k, v in (obj.get("data") or {}).items()}


def decode_config_map(obj: Doc) -> dict[str, bytes]:
    """ConfigMap ``data`` as UTF-8 and ``binaryData`` (base64) as bytes."""
    out = {k: v.encode() for k, v in (obj.get("data") or {}).items()}
    out.update({k: base64.b64decode(v) for k, v in (obj.get("binaryData") or {}).items()})
    return out

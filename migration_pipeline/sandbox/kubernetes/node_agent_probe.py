"""Readiness probes, run by the pod's thread against 127.0.0.1 (every pod shares the machine's network)."""

from __future__ import annotations

import http.client
import socket
import ssl
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

Doc = dict[str, Any]


@dataclass
class Probe:
    """A readiness probe's schedule and counters."""

    spec: Doc
    next_at: float
    successes: int = 0
    failures: int = 0

def _port(value: Any, container: Doc) -> int:
    if isinstance(value, int) or str(value).isdigit():
        return int(value)
    for port in container.get("ports", []) or []:
        if port.get("name") == value:
            return int(port["containerPort"])
    raise ValueError(f"no container port named {value!r}")


def run_probe(spec: Doc, container: Doc, env: Mapping[str, str], cwd: str) -> bool:
    """One readiness check on 127.0.0.1 (httpGet, tcpSocket or exec); unsupported kinds count as passing."""
    timeout = float(spec.get("timeoutSeconds", 1))
    try:
        if "httpGet" in spec:
            get = spec["httpGet"]
            host, port = get.get("host") or "127.0.0.1", _port(get["port"], container)
            if get.get("scheme", "HTTP").upper() == "HTTPS":
                conn: http.client.HTTPConnection = http.client.HTTPSConnection(
                    host, port, timeout=timeout, context=ssl._create_unverified_context())
            else:
                conn = http.client.HTTPConnection(host, port, timeout=timeout)
            try:
                headers = {h["name"]: h["value"] for h in get.get("httpHeaders", []) or []}
                conn.request("GET", get.get("path", "/"), headers=headers)
                return 200 <= conn.getresponse().status < 400
            finally:
                conn.close()
        if "tcpSocket" in spec:
            sock = spec["tcpSocket"]
            with socket.create_connection((sock.get("host") or "127.0.0.1", _port(sock["port"], container)),
                                          timeout=timeout):
                return True
        if "exec" in spec:
            proc = subprocess.run(spec["exec"]["command"], env=dict(env), cwd=cwd, timeout=timeout,
                                  stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            return proc.returncode == 0
    except (OSError, ValueError, subprocess.SubprocessError, http.client.HTTPException):
        return False
    return True

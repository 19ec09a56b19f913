"""The Host header: the target's, as the captured one named the source."""

from __future__ import annotations

from urllib.parse import urlsplit

from workers.common.clusters import ClusterConnection
from workers.replay.messages import HttpRequest


def endpoint_host(conn: ClusterConnection) -> str:
    """``host[:port]`` of the connection's endpoint, as a Host header names it (no user info)."""
    return urlsplit(conn.endpoint).netloc.rpartition("@")[2]


class HostTransform:
    """Sets Host to the target endpoint's ``host[:port]``."""

    name = "host"

    def __init__(self, target: ClusterConnection) -> None:
        self.host = endpoint_host(target)

    def apply(self, req: HttpRequest) -> list[HttpRequest]:
        """``req`` addressed to the target."""
        return [req.with_header("Host", self.host)]

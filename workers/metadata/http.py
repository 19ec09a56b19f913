"""HTTP calls to the source or target with errors a person can act on: unreachable, refused credentials, rejected."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from opensearchpy import OpenSearch
from opensearchpy.exceptions import ConnectionError as ClientConnectionError
from opensearchpy.exceptions import TransportError

from workers.common.cluster_info import ClusterUnreachableError
from workers.metadata.errors import MetadataError

T = TypeVar("T")


class ClusterAuthError(ClusterUnreachableError):
    """The cluster refused the credentials (401) or the user lacks a permission (403)."""


class RequestRejected(MetadataError):
    """The cluster answered an error; ``status`` and ``reason`` (the cluster's own words) say why."""

    def __init__(self, message: str, status: int, reason: str) -> None:
        super().__init__(message)
        self.status = status
        self.reason = reason


def error_reason(exc: TransportError) -> str:
    """The most specific ``type: reason`` in an error answer (the innermost ``caused_by``)."""
    info = exc.info if isinstance(exc.info, dict) else {}
    return answer_reason(info) or str(exc.error or exc)


def answer_reason(answer: dict[str, Any]) -> str | None:
    """The innermost ``type: reason`` of an error answer's ``error``, or None when it holds none."""
    error = answer.get("error")
    if not isinstance(error, dict):
        return str(error) if error else None
    while isinstance(error.get("caused_by"), dict):
        error = error["caused_by"]
    kind, reason = error.get("type"), error.get("reason")
    return f"{kind}: {reason}" if kind else str(reason)


def guard(where: str, what: str, fn: Callable[[], T]) -> T:
    """Run ``fn`` (a client call) with connection and HTTP errors turned into project errors naming ``where``."""
    try:
        return fn()
    except ClientConnectionError as exc:
        detail = getattr(exc, "info", None) or exc
        raise ClusterUnreachableError(f"cannot reach {where}: {detail}") from None
    except TransportError as exc:
        status = exc.status_code if isinstance(exc.status_code, int) else 0
        if status == 401:
            raise ClusterAuthError(f"{where} refused the credentials (401) on {what}: check the username and "
                                   "the password variable") from None
        if status == 403:
            raise ClusterAuthError(f"{where} denied {what} (403 forbidden): {error_reason(exc)}") from None
        reason = error_reason(exc)
        raise RequestRejected(f"{where} rejected {what} ({status}): {reason}", status, reason) from None


def request(client: OpenSearch, method: str, path: str, *, where: str, params: dict[str, str] | None = None,
            body: Any = None, expected: tuple[int, ...] = ()) -> Any:
    """``perform_request`` through :func:`guard`; ``what`` in messages is ``METHOD path``.

    Error answers with a status in ``expected`` (a probe's "no") raise :class:`RequestRejected` without the
    client logging them as failures.
    """
    answer = guard(where, f"{method} {path}", lambda: client.transport.perform_request(
        method, path, params=params, body=body, ignore=expected))
    if expected and isinstance(answer, dict) and answer.get("status") in expected and "error" in answer:
        reason = answer_reason(answer) or "error"
        raise RequestRejected(f"{where} rejected {method} {path} ({answer['status']}): {reason}",
                              int(answer["status"]), reason)
    return answer

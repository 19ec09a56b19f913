"""``console clusters curl``: a curl-like request line, sent through the cluster's opensearch-py connection."""

from __future__ import annotations

import json
import sys
import warnings
from dataclasses import dataclass, field
from pathlib import Path

from opensearchpy import OpenSearch
from opensearchpy.exceptions import ConnectionError as ClientConnectionError
from opensearchpy.exceptions import ConnectionTimeout, SSLError

from workers.common.cluster_info import ClusterUnreachableError
from workers.common.connection_check import connection_reason
from workers.common.errors import ConfigurationError

_SECRET_HEADERS = ("authorization", "proxy-authorization", "cookie", "x-amz-security-token")
_METHODS = ("GET", "HEAD", "POST", "PUT", "DELETE", "PATCH")


@dataclass
class CurlRequest:
    """One request: method, path (with its query string), body and extra headers."""

    path: str = ""
    method: str | None = None
    body: bytes | None = None
    headers: dict[str, str] = field(default_factory=dict)

    @property
    def effective_method(self) -> str:
        """``-X`` when given, else POST with a body and GET without, as curl does."""
        return self.method or ("POST" if self.body is not None else "GET")


@dataclass(frozen=True)
class CurlResponse:
    """What came back: status, headers, body text and the warnings the server attached."""

    status: int
    headers: dict[str, str]
    body: str
    warnings: list[str]

    @property
    def ok(self) -> bool:
        """True for a 2xx status."""
        return 200 <= self.status < 300

    def pretty_body(self) -> str:
        """The body as indented JSON when it is JSON, else as it came."""
        if "json" in self.headers.get("content-type", "").lower() and self.body.strip():
            try:
                return json.dumps(json.loads(self.body), indent=2, ensure_ascii=False)
            except ValueError:
                pass
        return self.body.rstrip("\n")


def parse_args(tokens: list[str], request: CurlRequest) -> CurlRequest:
    """Fill ``request`` from the words after ``--``: PATH, -X METHOD, -d BODY|@file, -H 'K: V'."""
    i = 0
    while i < len(tokens):
        token = tokens[i]
        flag, inline = _split_flag(token)
        if flag is None:
            if request.path:
                raise ConfigurationError(f"curl takes one PATH; got {request.path!r} and {token!r}")
            request.path = token
            i += 1
            continue
        if inline is None:
            if i + 1 >= len(tokens):
                raise ConfigurationError(f"curl option {token} needs a value")
            value, i = tokens[i + 1], i + 2
        else:
            value, i = inline, i + 1
        apply_option(request, flag, value)
    return request


def _split_flag(token: str) -> tuple[str | None, str | None]:
    for long_name, short in (("--request", "-X"), ("--data", "-d"), ("--data-raw", "-d"), ("--header", "-H")):
        if token in (long_name, short):
            return short, None
        if token.startswith(long_name + "="):
            return short, token[len(long_name) + 1:]
        if token.startswith(short) and len(token) > 2:  # -XPUT, as curl allows
            return short, token[2:]
    if token.startswith("-") and len(token) > 1:
        raise ConfigurationError(f"curl does not know the option {token!r} (use -X, -d, -H)")
    return None, None


def apply_option(request: CurlRequest, flag: str, value: str) -> None:
    """Apply one of -X, -d (``@file`` reads a file, ``@-`` stdin) or -H to ``request``."""
    if flag == "-X":
        method = value.upper()
        if method not in _METHODS:
            raise ConfigurationError(f"-X {value!r}: method must be one of {', '.join(_METHODS)}")
        request.method = method
    elif flag == "-d":
        request.body = _read_body(value)
    elif flag == "-H":
        name, sep, header_value = value.partition(":")
        if not sep or not name.strip():
            raise ConfigurationError(f"-H {_redact_header_arg(value)!r} must be 'Name: value'")
        request.headers[name.strip().lower()] = header_value.strip()


def _read_body(value: str) -> bytes:
    if value == "@-":
        return sys.stdin.buffer.read()
    if value.startswith("@"):
        try:
            return Path(value[1:]).read_bytes()
        except OSError as exc:
            raise ConfigurationError(f"-d {value}: cannot read {value[1:]}: {exc.strerror}") from None
    return value.encode()


def _redact_header_arg(value: str) -> str:
    name = value.partition(":")[0]
    return f"{name}: <redacted>" if name.strip().lower() in _SECRET_HEADERS else value


def shown_headers(headers: dict[str, str]) -> dict[str, str]:
    """Headers safe to print: credentials replaced by ``<redacted>``."""
    return {k: "<redacted>" if k.lower() in _SECRET_HEADERS else v for k, v in headers.items()}


def send(client: OpenSearch, request: CurlRequest, where: str) -> CurlResponse:
    """Send ``request`` on one of ``client``'s connections (its auth and TLS); any HTTP status is returned."""
    if not request.path:
        raise ConfigurationError("curl needs a PATH, e.g. -- /_cat/indices?v")
    path = request.path if request.path.startswith("/") else "/" + request.path
    headers = dict(request.headers)
    if request.body is not None:
        # Both engines reject a body without a content type; bulk bodies are taken as application/json too.
        headers.setdefault("content-type", "application/json")
    connection = client.transport.get_connection()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            # The transport layer would retry, raise on non-2xx and parse the body; the raw connection does none.
            status, response_headers, raw = connection.perform_request(
                request.effective_method, path, body=request.body, headers=headers, ignore=range(100, 600))
        except SSLError as exc:
            raise ClusterUnreachableError(f"TLS failure talking to {where}: {exc.info or exc.error}") from None
        except ConnectionTimeout:
            raise ClusterUnreachableError(f"{where} did not answer within the timeout") from None
        except ClientConnectionError as exc:
            raise ClusterUnreachableError(f"cannot connect to {where}: {connection_reason(exc)}") from None
    return CurlResponse(int(status), {k.lower(): v for k, v in response_headers.items()}, raw or "",
                        [str(w.message) for w in caught])


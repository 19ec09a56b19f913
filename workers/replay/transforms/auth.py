"""Target authentication: the captured credentials never leave, the target's own are added.

The captured ``Authorization`` (and any captured SigV4 headers: ``X-Amz-Date``, ``X-Amz-Security-Token``,
``X-Amz-Content-SHA256``) are the source's; they are always dropped. Then, by the target connection's
``auth.kind``: ``basic`` adds ``Authorization: Basic`` (password read once, from its environment variable);
``sigv4`` signs the request as it will be sent (the body as :func:`~workers.replay.parsing.wire_body` gives it,
compressed or not), so this step runs last; ``cert`` and ``none`` add nothing (the sender's TLS context carries a
client certificate). No secret is ever logged or put in an error message.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import replace
from typing import Any
from urllib.parse import quote, unquote_plus

from botocore.auth import SigV4Auth as BotoSigV4Auth
from botocore.awsrequest import AWSRequest

from workers.common.clusters import BasicAuth, ClusterConnection, SigV4Auth
from workers.common.errors import ConfigurationError
from workers.replay.messages import HttpRequest
from workers.replay.parsing import wire_body
from workers.replay.transforms.host import endpoint_host

# The source's credentials, in whatever form they came.
CAPTURED_CREDENTIALS = ("Authorization", "X-Amz-Date", "X-Amz-Security-Token", "X-Amz-Content-SHA256")
# What SigV4 adds (botocore's names).
_SIGV4_HEADERS = ("Authorization", "X-Amz-Date", "X-Amz-Security-Token", "X-Amz-Content-SHA256")
# RFC 3986 unreserved characters: all AWS's canonical query leaves unencoded.
_UNRESERVED = "-_.~"


def canonical_query(query: str) -> str:
    """``query`` encoded as AWS canonicalizes it (each name and value percent-encoded but for unreserved
    characters, ``+`` as a space), so that what is signed is exactly what is sent. Order is kept."""
    out = []
    for pair in query.split("&"):
        if not pair:
            continue
        name, sep, value = pair.partition("=")
        encoded = quote(unquote_plus(name), safe=_UNRESERVED)
        out.append(f"{encoded}={quote(unquote_plus(value), safe=_UNRESERVED)}" if sep else encoded)
    return "&".join(out)


class AuthTransform:
    """Replaces the captured credentials with the target's."""

    name = "auth"

    def __init__(self, target: ClusterConnection, credentials: Any = None) -> None:
        """``credentials``: botocore credentials for SigV4 (default: boto3's usual chain, read here)."""
        self._endpoint = target.endpoint
        self._host = endpoint_host(target)
        self._basic: str | None = None
        self._sigv4: SigV4Auth | None = None
        self._credentials: Any = None
        auth = target.auth
        if isinstance(auth, BasicAuth):
            token = base64.b64encode(f"{auth.username}:{auth.password()}".encode()).decode("ascii")
            self._basic = f"Basic {token}"
        elif isinstance(auth, SigV4Auth):
            if credentials is None:
                import boto3

                credentials = boto3.Session().get_credentials()
            if credentials is None:
                raise ConfigurationError(f"SigV4 for {target.endpoint}: no AWS credentials found in the usual chain")
            self._sigv4, self._credentials = auth, credentials

    def __repr__(self) -> str:
        # Never the password or keys.
        kind = "basic" if self._basic else "sigv4" if self._sigv4 else "none"
        return f"AuthTransform({self._endpoint}, {kind})"

    def apply(self, req: HttpRequest) -> list[HttpRequest]:
        """``req`` with the target's credentials only."""
        req = req.without_headers(*CAPTURED_CREDENTIALS)
        if self._basic is not None:
            return [req.with_header("Authorization", self._basic)]
        if self._sigv4 is not None:
            return [self._sign(req, self._sigv4)]
        return [req]

    def _sign(self, req: HttpRequest, auth: SigV4Auth) -> HttpRequest:
        if req.query:
            req = replace(req, query=canonical_query(req.query))
        # The hash of the bytes that will be sent, given to botocore rather than the body: hashed once, and signed
        # for the aoss service, which requires the header.
        digest = hashlib.sha256(wire_body(req)).hexdigest()
        host = req.header("Host") or self._host
        signing = AWSRequest(method=req.method, url=self._endpoint + req.target,
                             headers={"Host": host, "X-Amz-Content-SHA256": digest})
        # Frozen per request: refreshable credentials may rotate, and key, secret and token must belong together.
        BotoSigV4Auth(self._credentials.get_frozen_credentials(), auth.service, auth.region).add_auth(signing)
        for name in _SIGV4_HEADERS:
            value = signing.headers.get(name)
            if value is not None:
                req = req.with_header(name, value)
        return req

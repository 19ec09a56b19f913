"""A client of the capture proxies' admin API (``--admin-listen``): status, pause-writes, switch, resume.

One ``ProxyAdmin`` per admin URL (a proxy started with ``--workers N`` has one admin port per worker process, and
every one of them must be addressed). The bearer token is passed in, sent only in the Authorization header, and
never logged nor put in an error message or ``repr``. TLS certificates are verified unless told otherwise.
Every error names the URL; a 409 (the proxy refused in its current state: a switch while not paused, say) and a
401/403 (the token) have classes of their own.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

import requests

from workers.common.errors import MigrationError

Side = Literal["source", "target"]
SIDES: tuple[Side, Side] = ("source", "target")
T = TypeVar("T")


class ProxyAdminError(MigrationError):
    """An admin request failed; the message names the proxy's admin URL."""

    def __init__(self, url: str, message: str, status: int | None = None) -> None:
        super().__init__(f"proxy admin {url}: {message}")
        self.url = url
        self.status = status


class ProxyUnauthorized(ProxyAdminError):
    """The proxy refused the token (401 or 403)."""


class ProxyConflict(ProxyAdminError):
    """The proxy refused the request in its current state (409): a switch while writes are not paused, say."""


@dataclass
class ProxyAdmin:
    """The admin API of one proxy process."""

    url: str
    token: str = field(repr=False)
    # True, False, or a CA bundle's path (what requests' ``verify`` takes).
    verify: bool | str = True
    timeout_s: float = 10.0
    _session: requests.Session = field(default_factory=requests.Session, init=False, repr=False)

    def __post_init__(self) -> None:
        self.url = self.url.rstrip("/")
        if not self.url.startswith(("http://", "https://")):
            raise ProxyAdminError(self.url, "expected an http(s)://host:port admin URL")

    def status(self) -> dict[str, Any]:
        """``GET /status``: the side, the hold, the topics and destinations, the switches so far."""
        return self._call("GET", "/status")

    def pause_writes(self, max_hold_s: float | None = None, *, timeout_s: float = 60.0) -> dict[str, Any]:
        """``POST /pause-writes``: returns once writes are held and those in flight are finished and captured."""
        body = {"max_hold_s": max_hold_s} if max_hold_s is not None else {}
        return self._call("POST", "/pause-writes", body, timeout_s=timeout_s)

    def switch(self, to: Side) -> dict[str, Any]:
        """``POST /switch``: the side held and later requests go to (only while paused, else ProxyConflict)."""
        return self._call("POST", "/switch", {"to": to})

    def resume(self) -> dict[str, Any]:
        """``POST /resume``: held requests released to the current side."""
        return self._call("POST", "/resume", {})

    def close(self) -> None:
        """Close the pooled connections."""
        self._session.close()

    def _call(self, method: str, path: str, body: dict[str, Any] | None = None, *,
              timeout_s: float | None = None) -> dict[str, Any]:
        what = f"{method} {path}"
        try:
            response = self._session.request(
                method, self.url + path, json=body, timeout=timeout_s or self.timeout_s, verify=self.verify,
                headers={"Authorization": f"Bearer {self.token}", "Accept": "application/json"})
        except requests.exceptions.SSLError as exc:
            raise ProxyAdminError(self.url, f"{what}: TLS failed ({_short(exc)}); pass the proxy's CA "
                                            "(--ca-cert) rather than turning verification off") from None
        except requests.exceptions.Timeout:
            raise ProxyAdminError(self.url, f"{what}: no answer in {timeout_s or self.timeout_s:g}s") from None
        except requests.exceptions.RequestException as exc:
            raise ProxyAdminError(self.url, f"{what}: cannot connect ({_short(exc)})") from None
        if response.status_code in (401, 403):
            raise ProxyUnauthorized(self.url, f"{what}: the proxy refused the token ({response.status_code}); "
                                              "check the variable --token-env names", response.status_code)
        detail = _detail(response)
        if response.status_code == 409:
            raise ProxyConflict(self.url, f"{what}: refused in the proxy's current state (409): {detail}", 409)
        if response.status_code >= 300:
            raise ProxyAdminError(self.url, f"{what}: HTTP {response.status_code}: {detail}",
                                  response.status_code)
        try:
            answer = response.json()
        except ValueError:
            raise ProxyAdminError(self.url, f"{what}: the answer is not JSON: {response.text[:200]!r}") from None
        return answer if isinstance(answer, dict) else {"answer": answer}


def _short(exc: Exception) -> str:
    # requests nests the reason several levels deep; its last line says what happened.
    return str(exc).splitlines()[-1][:300] if str(exc) else type(exc).__name__


def _detail(response: requests.Response) -> str:
    try:
        answer = response.json()
    except ValueError:
        return response.text[:300] or response.reason
    if isinstance(answer, dict):
        return str(answer.get("error") or answer.get("reason") or answer)[:300]
    return str(answer)[:300]


@dataclass(frozen=True)
class Outcome:
    """What one proxy answered to a request sent to all of them: its answer, or the error."""

    proxy: ProxyAdmin
    answer: dict[str, Any] | None = None
    error: Exception | None = None

    @property
    def ok(self) -> bool:
        """True when the proxy answered without an error."""
        return self.error is None


def each(proxies: Sequence[ProxyAdmin], call: Callable[[ProxyAdmin], dict[str, Any]]) -> list[Outcome]:
    """``call`` on every proxy at once (threads: the proxies' hold lasts as long as the slowest answer, not the
    sum), in the proxies' order; errors are returned, not raised, so the caller can undo what succeeded."""
    def one(proxy: ProxyAdmin) -> Outcome:
        try:
            return Outcome(proxy, call(proxy))
        except Exception as exc:  # every failure is the caller's to handle, per proxy
            return Outcome(proxy, error=exc)

    if len(proxies) == 1:
        return [one(proxies[0])]
    with ThreadPoolExecutor(min(len(proxies), 32), thread_name_prefix="proxy-admin") as pool:
        return list(pool.map(one, proxies))


def failures(outcomes: Sequence[Outcome]) -> str:
    """The errors among ``outcomes``, one per proxy, for a message."""
    return "; ".join(str(o.error) for o in outcomes if o.error is not None)

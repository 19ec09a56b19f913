"""The proxy's switch for cutover: hold writes, change where requests go and where they are captured, release.

One ``SwitchState`` per proxy process, shared by every client connection; plain asyncio, the event loop's thread
only. A request is on a side, "source" or "target", chosen when it is admitted: its destination and the capture
topic of its records are that side's (a ``Route``). Mutating requests (``is_write``) are counted from admission
until their response is complete and their capture records are answered for by Kafka; while writes are paused
they are not admitted but held (reads never are). The admin API (workers.capture.admin) drives it: pause, wait
for the writes in flight, switch, resume. A hold outlasting its limit is released by the proxy itself, on the
side it is on, and recorded as ``last_abort``.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import time
from dataclasses import dataclass

from workers.capture.buffered import release
from workers.capture.classify import changes_data
from workers.capture.kafka_sink import Ticket
from workers.capture.metrics import ProxyMetrics
from workers.capture.options import Destination, ProxyOptions, TlsOptions
from workers.capture.upstream import destination_ssl_context

log = logging.getLogger("workers.capture.switch")

SOURCE = "source"
TARGET = "target"


@dataclass(frozen=True, slots=True, eq=False)
class Route:
    """Where the requests of one side go, and the topic their capture records go to (None: capture off)."""

    side: str
    destination: Destination
    ssl: ssl.SSLContext | None
    topic: str | None


def is_write(method: str, path: str) -> bool:
    """A request the switch holds while paused: a mutating method, and not one of the read APIs sent as POST."""
    return changes_data(method, path)


class SwitchError(Exception):
    """An admin request the switch refuses; ``status`` is the HTTP status the admin API answers with."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class SwitchState:
    """The side requests are admitted on, the hold, and the writes in flight."""

    def __init__(self, routes: dict[str, Route], max_hold_s: float, metrics: ProxyMetrics) -> None:
        self.routes = routes
        self.route = routes[SOURCE]
        self.max_hold_s = max_hold_s
        self._metrics = metrics
        self.paused = False
        # Mutating requests waiting for the resume, and those admitted and not yet finished (see ``settle``).
        self.held = 0
        self.in_flight = 0
        self.hold_started_at: float | None = None
        self._hold_started = 0.0
        self._hold_limit = max_hold_s
        self.switches = 0
        self.last_abort: dict[str, object] | None = None
        # Set when the hold ends (held requests wait for it), and when the writes in flight reach none.
        self._released: asyncio.Future[None] | None = None
        self._drained: asyncio.Future[None] | None = None
        self._timer: asyncio.TimerHandle | None = None
        # Made once: a write's capture calls it back (``settle``).
        self._finished_one = self._done

    @classmethod
    def build(cls, options: ProxyOptions, metrics: ProxyMetrics, source_ssl: ssl.SSLContext | None) -> SwitchState:
        """The switch of a proxy running with ``options``: on the source, with a target route if one is set."""
        kafka_topic = options.kafka.topic if options.kafka else None
        routes = {SOURCE: Route(SOURCE, options.destination, source_ssl, kafka_topic)}
        if options.switch_target is not None:
            target = options.switch_target
            tls = TlsOptions(destination_ca_file=options.switch_target_ca_file,
                             insecure_destination=options.switch_target_insecure)
            routes[TARGET] = Route(TARGET, target, destination_ssl_context(tls) if target.tls else None,
                                   options.reverse_topic_name)
        state = cls(routes, options.max_hold_s, metrics)
        if options.start_side == TARGET:
            state.route = routes[TARGET]
            metrics.side.set(1)
        return state

    # -- the connections' side

    async def hold(self) -> Route:
        """Wait while writes are paused, then admit the write (counted in flight) on the side current then."""
        metrics = self._metrics
        self.held += 1
        metrics.held.inc()
        try:
            while self.paused and self._released is not None:
                # Shielded: a held connection that goes away must not end the hold for the others.
                await asyncio.shield(self._released)
        finally:
            self.held -= 1
            metrics.held.dec()
        self.in_flight += 1
        return self.route

    def finished(self) -> None:
        """An admitted write is done: answered, and its capture records answered for by Kafka."""
        self.in_flight -= 1
        if self.in_flight <= 0:
            release(self._drained)

    def settle(self, request: Ticket | None, response: Ticket | None) -> None:
        """An admitted write was answered: finished once its request's and response's capture records are answered
        for (a group never sealed, the message having been cut short, will not be: it is not waited for)."""
        waits_request = request is not None and request.sealed and not request.done
        waits_response = response is not None and response.sealed and not response.done
        if waits_request and waits_response:
            assert request is not None and response is not None
            left = [2]

            def one(_ok: bool) -> None:
                left[0] -= 1
                if left[0] == 0:
                    self.finished()

            request.on_done(one)
            response.on_done(one)
        elif waits_request:
            assert request is not None
            request.on_done(self._finished_one)
        elif waits_response:
            assert response is not None
            response.on_done(self._finished_one)  # the usual case: the request's records were acknowledged
        else:
            self.finished()

    def _done(self, _ok: bool) -> None:
        self.finished()

    # -- the admin API's side

    async def pause(self, max_hold_s: float | None = None) -> None:
        """Hold new writes, then wait for the writes in flight to finish. Already paused: waits likewise, the
        hold's limit unchanged. SwitchError (504) when they do not finish within the limit: the hold is released."""
        loop = asyncio.get_running_loop()
        if not self.paused:
            limit = self.max_hold_s if max_hold_s is None else max_hold_s
            self.paused = True
            self.hold_started_at = time.time()
            self._hold_started = loop.time()
            self._hold_limit = limit
            self._released = loop.create_future()
            self._timer = loop.call_later(limit, self._expired)
            self._metrics.paused.set(1)
            log.info("writes paused on the %s side (released by itself after %g s); %d in flight",
                     self.route.side, limit, self.in_flight)
        hold = self._released
        while self.in_flight > 0:
            if not self.paused or self._released is not hold:
                raise SwitchError(504, str((self.last_abort or {}).get("reason")
                                           or "the hold was released while waiting for the writes in flight"))
            if self._drained is None or self._drained.done():
                self._drained = loop.create_future()
            await asyncio.shield(self._drained)
        if not self.paused or self._released is not hold:
            raise SwitchError(504, str((self.last_abort or {}).get("reason") or "the hold was released"))

    def switch(self, to: str) -> bool:
        """Requests admitted from now on go to side ``to`` (True when that changed the side)."""
        self.switch_check(to)
        if self.route.side == to:
            return False
        self.route = self.routes[to]
        self.switches += 1
        self._metrics.switches.labels(to).inc()
        self._metrics.side.set(1 if to == TARGET else 0)
        log.warning("switched: requests now go to the %s (%s), captured to %s", to, self.route.destination.url,
                    self.route.topic or "nothing")
        return True

    def switch_check(self, to: str) -> None:
        """SwitchError unless ``switch(to)`` may happen now: a known side, writes paused, none in flight."""
        if to not in (SOURCE, TARGET):
            raise SwitchError(400, 'switch: "to" must be "source" or "target"')
        if to not in self.routes:
            raise SwitchError(400, "switch: no --switch-target is configured")
        if not self.paused:
            raise SwitchError(409, "switch: writes are not paused (POST /pause-writes first)")
        if self.in_flight:
            raise SwitchError(409, f"switch: {self.in_flight} write(s) still in flight (pause-writes has not "
                                   "completed)")

    def resume(self) -> bool:
        """Release the held writes, on the side current now (False when writes were not paused)."""
        if not self.paused:
            return False
        loop = asyncio.get_running_loop()
        self.paused = False
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._metrics.hold_seconds.inc(max(0.0, loop.time() - self._hold_started))
        self._metrics.paused.set(0)
        self.hold_started_at = None
        released, self._released = self._released, None
        release(released)
        release(self._drained)
        log.info("writes resumed on the %s side (%d held released)", self.route.side, self.held)
        return True

    def _expired(self) -> None:
        self._timer = None
        if not self.paused:
            return
        reason = (f"writes held for max_hold_s ({self._hold_limit:g} s) without a resume: released on the "
                  f"{self.route.side} side")
        if self.in_flight:
            reason += f" ({self.in_flight} write(s) admitted before the pause were still in flight)"
        self.last_abort = {"at": time.time(), "reason": reason}
        self._metrics.hold_aborts.inc()
        log.warning("%s", reason)
        self.resume()

    def status(self) -> dict[str, object]:
        """What GET /status reports."""
        target = self.routes.get(TARGET)
        return {
            "side": self.route.side, "paused": self.paused, "held": self.held, "in_flight_writes": self.in_flight,
            "hold_started_at": self.hold_started_at,
            "max_hold_s": self._hold_limit if self.paused else self.max_hold_s,
            "topic": self.route.topic,
            "topics": {SOURCE: self.routes[SOURCE].topic, TARGET: target.topic if target else None},
            "destinations": {SOURCE: self.routes[SOURCE].destination.url,
                             TARGET: target.destination.url if target else None},
            "switches": self.switches, "last_abort": self.last_abort,
        }

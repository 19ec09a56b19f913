"""One request in flight through a client connection, and the in-order hand-off from its request side to its
response side."""

from __future__ import annotations

import asyncio
from collections import deque
from dataclasses import dataclass

from workers.capture.buffered import release
from workers.capture.http1 import RequestHead
from workers.capture.kafka_sink import Ticket
from workers.capture.recorder import MessageRecorder
from workers.capture.switch import Route
from workers.capture.upstream import Upstream


@dataclass(eq=False, slots=True)
class Transaction:
    """One request and, later, its response."""

    seq: int
    head: RequestHead | None
    received_ns: int
    upstream: Upstream | None = None
    recorder: MessageRecorder | None = None
    ticket: Ticket | None = None
    # The response is held until the request's records are acknowledged (only the bench's forward-before-ack).
    wait_for_ack: bool = False
    # A write: the request's last bytes are held until its records are acknowledged (release-after-ack); if they
    # are not, reject mode answers 503 and forward mode forwards it anyway.
    hold: bool = False
    local: bytes | None = None
    forwarded_ns: int = 0
    # The side it is on (workers.capture.switch): its destination and capture topic. ``write``: a mutating request
    # admitted by the switch, counted in flight until answered and its records answered for.
    route: Route | None = None
    write: bool = False
    # The records of a write's response (its capture settles the write with the switch).
    response_ticket: Ticket | None = None

    @property
    def method(self) -> str:
        """The request method ("" for a malformed request)."""
        return self.head.method if self.head else ""


class Handoff:
    """Transactions from the request side to the response side, in order (None: no more will come).

    An asyncio.Queue would do, at the cost of a coroutine per put and more bookkeeping per get than a request's
    own framing; this queue is unbounded, the number of requests a client pipelines being its own business.
    """

    __slots__ = ("_items", "_waiter")

    def __init__(self) -> None:
        self._items: deque[Transaction | None] = deque()
        self._waiter: asyncio.Future[None] | None = None

    def put(self, txn: Transaction | None) -> None:
        """Queue the next transaction (or None: the request side is done)."""
        self._items.append(txn)
        release(self._waiter)

    async def get(self) -> Transaction | None:
        """The next transaction, once there is one."""
        while not self._items:
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        return self._items.popleft()

    def drain(self) -> list[Transaction | None]:
        """What is still queued (the response side ended before answering it), removed."""
        items = list(self._items)
        self._items.clear()
        return items

    def busy(self) -> bool:
        """True unless the response side waits for a transaction with none queued (nothing is being answered)."""
        return self._waiter is None or bool(self._items)

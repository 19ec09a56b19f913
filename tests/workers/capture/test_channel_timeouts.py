"""The channel's read timeouts over real loopback sockets, on asyncio's loop and on uvloop: which wait times out,
when, and that the idle clock waits for a response still on its way."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any

import pytest
import uvloop

from workers.capture.body import DISCARD, copy_body
from workers.capture.buffered import BODY_TIMEOUT, HEADER_TIMEOUT, IDLE_TIMEOUT, Channel, ReadTimeout
from workers.capture.http1 import BodyFramer, Framing

LIMITS = {IDLE_TIMEOUT: 0.3, HEADER_TIMEOUT: 0.5, BODY_TIMEOUT: 0.4}
Runner = Callable[[Coroutine[Any, Any, None]], None]


@pytest.fixture(params=["asyncio", "uvloop"])
def run(request: pytest.FixtureRequest) -> Runner:
    def runner(coro: Coroutine[Any, Any, None]) -> None:
        (uvloop.run if request.param == "uvloop" else asyncio.run)(coro)
    return runner


async def _pair(limits: dict[str, float] = LIMITS) -> tuple[Channel, asyncio.StreamReader, asyncio.StreamWriter]:
    loop = asyncio.get_running_loop()
    accepted: asyncio.Future[Channel] = loop.create_future()
    server = await loop.create_server(lambda: Channel(loop, accepted.set_result, limits), "127.0.0.1", 0)
    reader, writer = await asyncio.open_connection("127.0.0.1", server.sockets[0].getsockname()[1])
    channel = await asyncio.wait_for(accepted, 10)
    server.close()
    return channel, reader, writer


async def _timed_out(wait: Coroutine[Any, Any, object]) -> tuple[str, float]:
    loop = asyncio.get_running_loop()
    began = loop.time()
    with pytest.raises(ReadTimeout) as raised:
        await asyncio.wait_for(wait, 5)
    return str(raised.value), loop.time() - began


def test_a_silent_connection_times_out_idle_and_the_peer_sees_it_closed(run: Runner) -> None:
    async def scenario() -> None:
        channel, reader, _ = await _pair()
        why, took = await _timed_out(channel.read_head(1000))
        assert why == IDLE_TIMEOUT == channel.timed_out and 0.25 < took < 1.0
        assert await asyncio.wait_for(reader.read(), 5) == b""
    run(scenario())


def test_the_head_clock_runs_from_its_first_byte_whatever_arrives_after(run: Runner) -> None:
    async def scenario() -> None:
        channel, _, writer = await _pair()

        async def trickle() -> None:
            for byte in b"GET / HTTP/1.1\r\nHost: somewhere\r\n\r\n":
                writer.write(bytes([byte]))
                await asyncio.sleep(0.05)  # every 50 ms: within the idle limit, but the head takes 1.8 s

        feeding = asyncio.create_task(trickle())
        why, took = await _timed_out(channel.read_head(1000))
        feeding.cancel()
        assert why == HEADER_TIMEOUT and 0.45 < took < 1.2
    run(scenario())


def test_a_body_times_out_between_pieces_not_in_total(run: Runner) -> None:
    async def scenario() -> None:
        channel, _, writer = await _pair()
        loop = asyncio.get_running_loop()

        async def pieces() -> None:
            for _ in range(4):  # 0.3 s apart: each within the body limit, 1.2 s in all
                await asyncio.sleep(0.3)
                writer.write(b"x" * 10)

        feeding = asyncio.create_task(pieces())
        began = loop.time()
        why, _ = await _timed_out(copy_body(channel, BodyFramer(Framing.LENGTH, 100), DISCARD))
        feeding.cancel()
        assert why == BODY_TIMEOUT and 1.5 < loop.time() - began < 2.5  # the last piece at 1.2 s, then 0.4 s
    run(scenario())


def test_idle_waits_while_a_response_is_on_its_way_then_counts_from_its_last_byte(run: Runner) -> None:
    async def scenario() -> None:
        channel, reader, _ = await _pair()
        loop = asyncio.get_running_loop()
        answering = [True]
        channel.busy = lambda: answering[0]

        async def respond() -> None:
            await asyncio.sleep(0.8)  # more than twice the idle limit
            channel.write(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n")
            answering[0] = False

        responding = asyncio.create_task(respond())
        began = loop.time()
        why, _ = await _timed_out(channel.read_head(1000))
        await responding
        assert why == IDLE_TIMEOUT and 1.05 < loop.time() - began < 1.8  # 0.8 s, then the 0.3 s limit
        assert (await reader.read()).startswith(b"HTTP/1.1 200 OK")
    run(scenario())


def test_no_limit_means_no_timer(run: Runner) -> None:
    async def scenario() -> None:
        channel, _, writer = await _pair({IDLE_TIMEOUT: 0.0, HEADER_TIMEOUT: 0.0, BODY_TIMEOUT: 0.0})
        waiting = asyncio.create_task(channel.read_head(1000))
        await asyncio.sleep(0.5)
        assert not waiting.done() and channel._timer is None
        writer.write(b"GET / HTTP/1.1\r\n\r\n")
        assert await asyncio.wait_for(waiting, 5) == b"GET / HTTP/1.1\r\n\r\n"
    run(scenario())

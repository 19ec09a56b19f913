"""The proxy's connection channel over real loopback sockets: heads, back-pressure both ways, end of input."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable, Coroutine
from typing import Any

import pytest
import uvloop

from workers.capture import buffered
from workers.capture.buffered import Channel, HeadTooLarge


async def _pair() -> tuple[Channel, asyncio.StreamReader, asyncio.StreamWriter]:
    """A Channel accepting one connection, and the peer's plain asyncio streams."""
    loop = asyncio.get_running_loop()
    accepted: asyncio.Future[Channel] = loop.create_future()
    server = await loop.create_server(lambda: Channel(loop, accepted.set_result), "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    channel = await asyncio.wait_for(accepted, 10)
    server.close()
    return channel, reader, writer


Runner = Callable[[Coroutine[Any, Any, None]], None]


@pytest.fixture(params=["asyncio", "uvloop"])
def run(request: pytest.FixtureRequest) -> Runner:
    """Runs a scenario on the standard event loop and on uvloop (the proxy's default)."""
    def runner(coro: Coroutine[Any, Any, None]) -> None:
        if request.param == "uvloop":
            uvloop.run(coro)
        else:
            asyncio.run(coro)
    return runner


def test_heads_are_cut_at_their_empty_line_and_the_rest_stays_buffered(run: Runner) -> None:
    async def scenario() -> None:
        channel, _, peer = await _pair()
        peer.write(b"\r\nGET /a HTTP/1.1\r\nHost: x\r\n\r\nGET /b HTTP/1.1\r\n")
        assert await channel.read_head(1024, skip_empty_lines=True) == b"GET /a HTTP/1.1\r\nHost: x\r\n\r\n"
        peer.write(b"\r\n")
        assert await channel.read_head(1024) == b"GET /b HTTP/1.1\r\n\r\n"
        peer.write(b"x" * 2000)
        with pytest.raises(HeadTooLarge):
            await channel.read_head(1024)
        peer.close()
        channel.close()

    run(scenario())


def test_end_of_input_is_reported_once_every_byte_is_consumed(run: Runner) -> None:
    async def scenario() -> None:
        channel, peer_reader, peer = await _pair()
        peer.write(b"tail")
        peer.write_eof()
        while not channel.eof:
            await channel.fill()
        assert channel.take(len(channel.buf)) == b"tail"
        assert await channel.fill() is False
        assert await channel.read_head(1024) is None
        # Half-closed by the client: the answer still goes back.
        channel.write(b"answer")
        await channel.drain()
        channel.close()
        assert await asyncio.wait_for(peer_reader.read(), 10) == b"answer"

    run(scenario())


def test_reading_pauses_at_the_high_water_mark_and_resumes_when_more_is_wanted(
        run: Runner, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(buffered, "HIGH_WATER", 64 << 10)
    total = 8 << 20

    async def scenario() -> None:
        channel, _, peer = await _pair()
        sock = peer.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 64 << 10)
        sender = asyncio.ensure_future(_send(peer, total))
        await asyncio.sleep(0.5)  # the consumer reads nothing: the channel must stop taking bytes in
        held = len(channel.buf)
        assert held < 2 << 20, f"{held} bytes buffered while paused"
        assert not sender.done(), "the sender finished although the receiver stopped reading"
        received = 0
        while received < total:
            received += len(channel.take(len(channel.buf)))
            if received < total:
                assert await channel.fill()
        await asyncio.wait_for(sender, 10)
        peer.close()
        channel.close()

    run(scenario())


async def _send(writer: asyncio.StreamWriter, total: int) -> None:
    piece = b"y" * (256 << 10)
    for _ in range(total // len(piece)):
        writer.write(piece)
        await writer.drain()


def test_drain_waits_for_a_slow_reader_and_fails_once_the_peer_is_gone(run: Runner) -> None:
    async def scenario() -> None:
        channel, reader, peer = await _pair()
        piece = b"z" * (1 << 20)
        waited = False
        for _ in range(64):  # 64 MB that nobody reads: the transport's buffer fills and drain must wait
            channel.write(piece)
            drain = asyncio.ensure_future(channel.drain())
            await asyncio.sleep(0)
            if not drain.done():
                waited = True
                break
        assert waited, "drain never waited although the peer read nothing"
        got = 0
        while not drain.done():
            got += len(await reader.read(1 << 20))
        await drain
        assert got > 0
        peer.transport.abort()
        with pytest.raises(ConnectionError):
            for _ in range(100):
                channel.write(piece)
                await channel.drain()
                await asyncio.sleep(0.01)

    run(scenario())

"""Connections to the destination (the source cluster), and the TLS contexts of both sides."""

from __future__ import annotations

import asyncio
import socket
import ssl

from workers.capture.buffered import Channel
from workers.capture.options import Destination, TlsOptions


def destination_ssl_context(tls: TlsOptions) -> ssl.SSLContext:
    """Verifying by default (system CAs, or --destination-ca); --insecure-destination turns verification off."""
    context = ssl.create_default_context(cafile=tls.destination_ca_file)
    if tls.insecure_destination:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    if tls.destination_client_cert and tls.destination_client_key:
        context.load_cert_chain(tls.destination_client_cert, tls.destination_client_key)
    return context


def listener_ssl_context(tls: TlsOptions) -> ssl.SSLContext | None:
    """TLS termination with the PEM certificate and key; client certificates required when a client CA is set."""
    if not tls.cert_file or not tls.key_file:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(tls.cert_file, tls.key_file)
    if tls.client_ca_file:
        context.load_verify_locations(tls.client_ca_file)
        context.verify_mode = ssl.CERT_REQUIRED
    return context


class Upstream:
    """One connection to the destination, owned by one client connection."""

    __slots__ = ("stream", "writer")

    def __init__(self, channel: Channel) -> None:
        # One channel, two names: what the response side reads, what the request side writes.
        self.stream = channel
        self.writer = channel

    @property
    def usable(self) -> bool:
        """False once the destination closed the connection or it failed."""
        return not (self.stream.is_closing() or self.stream.eof)

    def close(self) -> None:
        """Close without waiting; bytes not yet sent are dropped (the request is abandoned)."""
        self.stream.abort()


async def connect(destination: Destination, context: ssl.SSLContext | None, timeout_s: float) -> Upstream:
    """Open a connection to the destination (OSError or TimeoutError when it cannot be reached)."""
    loop = asyncio.get_running_loop()
    _, channel = await asyncio.wait_for(
        loop.create_connection(lambda: Channel(loop), destination.host, destination.port, ssl=context,
                               server_hostname=destination.host if context else None),
        timeout_s)
    sock = channel.get_extra_info("socket")
    if sock is not None:
        # Small requests must not wait for Nagle's algorithm (the proxy writes a head and a body separately).
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return Upstream(channel)

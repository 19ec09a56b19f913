"""The few responses the proxy makes itself, instead of the source's."""

from __future__ import annotations


def local_response(status: int, reason: str, message: str, close: bool = False) -> bytes:
    """A small response the proxy makes itself (400, 502, 503)."""
    body = (message + "\n").encode()
    connection = b"Connection: close\r\n" if close else b""
    return (f"HTTP/1.1 {status} {reason}\r\nContent-Type: text/plain; charset=utf-8\r\n"
            f"Content-Length: {len(body)}\r\n").encode() + connection + b"\r\n" + body


BAD_REQUEST = local_response(400, "Bad Request", "capture proxy: malformed HTTP request", close=True)
HEAD_TOO_LARGE = local_response(431, "Request Header Fields Too Large", "capture proxy: request head too large",
                                close=True)
BAD_GATEWAY = local_response(502, "Bad Gateway", "capture proxy: the destination could not be reached")
BAD_GATEWAY_CLOSE = local_response(502, "Bad Gateway", "capture proxy: the destination failed", close=True)
UNAVAILABLE = local_response(503, "Service Unavailable", "capture proxy: capture unavailable, write refused")

"""Document ids as Elasticsearch stores them (``Uid.encodeId`` from 6.0 on; ``type#id`` before)."""

from __future__ import annotations

import base64

from workers.common.errors import MigrationError

_NUMERIC = 0xFE
_UTF8 = 0xFF
_BASE64_ESCAPE = 0xFD


def decode_id(raw: bytes) -> str:
    """Decode a binary ``_id``: numeric (BCD), UTF-8, or URL-safe base64 without padding."""
    if not raw:
        raise MigrationError("empty _id")
    first = raw[0]
    if first == _NUMERIC:
        digits = []
        for b in raw[1:]:
            digits.append(str(b >> 4))
            low = b & 0x0F
            if low == 0x0F:
                break
            digits.append(str(low))
        return "".join(digits)
    if first == _UTF8:
        return raw[1:].decode("utf-8")
    if first == _BASE64_ESCAPE:
        raw = raw[1:]
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def split_uid(uid: str) -> tuple[str, str]:
    """``type#id`` (Elasticsearch 5.x and indices it created) to (type, id); the type never holds ``#``."""
    type_name, sep, doc_id = uid.partition("#")
    if not sep:
        raise MigrationError(f"_uid {uid!r} has no '#'")
    return type_name, doc_id

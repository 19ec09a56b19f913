"""User transforms the transform tests load by import path (``module:function``)."""

from __future__ import annotations

from dataclasses import replace

import orjson

from workers.replay.messages import HttpRequest

NOT_CALLABLE = 42


def split_create_by_type(req: HttpRequest) -> list[HttpRequest] | HttpRequest | None:
    """A typed create-index (``PUT /i`` with mappings per type) as one create per type: ``PUT /i_t`` each."""
    if req.method != "PUT" or len(req.segments) != 1:
        return req
    mappings = orjson.loads(req.body).get("mappings", {})
    return [replace(req, path=f"/{req.segments[0]}_{name}", body=orjson.dumps({"mappings": mapping}))
            for name, mapping in mappings.items()]


def drop_deletes(req: HttpRequest) -> HttpRequest | None:
    """Nothing for a DELETE, the request otherwise."""
    return None if req.method == "DELETE" else req


def explode(req: HttpRequest) -> HttpRequest:
    """Always fails."""
    raise ValueError(f"cannot handle {req.path}")


def wrong_type(req: HttpRequest) -> str:
    """Returns something that is not a request."""
    return req.path


class Holder:
    """A transform reached through a dotted attribute."""

    @staticmethod
    def tag(req: HttpRequest) -> HttpRequest:
        """Adds a header."""
        return req.with_header("X-Tagged", "1")

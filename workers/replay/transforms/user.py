"""User transforms: a function named ``package.module:function``, given each parsed request.

It returns None or an empty list (the request is dropped), one :class:`HttpRequest`, or a list of them (fan-out:
a typed create-index split into one request per type, say). Requests are frozen: build new ones with
``dataclasses.replace`` or the ``with_header``/``without_headers`` helpers.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

from workers.common.errors import ConfigurationError
from workers.replay.messages import HttpRequest

UserFunction = Callable[[HttpRequest], Any]


def load_user_function(path: str) -> UserFunction:
    """The function at ``module:attr`` (``attr`` may be dotted: ``Class.method``); a ConfigurationError naming the
    path when it cannot be imported or is not callable."""
    module_name, sep, attr = path.partition(":")
    if not sep or not module_name or not attr:
        raise ConfigurationError(f"user transform {path!r} must be package.module:function")
    try:
        target: Any = importlib.import_module(module_name)
    except ImportError as exc:
        raise ConfigurationError(f"user transform {path!r}: cannot import module {module_name!r}: {exc}") from None
    except Exception as exc:  # the module ran and failed: say so rather than crash the replayer's start
        raise ConfigurationError(f"user transform {path!r}: importing {module_name!r} failed: "
                                 f"{type(exc).__name__}: {exc}") from None
    for part in attr.split("."):
        try:
            target = getattr(target, part)
        except AttributeError:
            raise ConfigurationError(f"user transform {path!r}: {module_name!r} has no {attr!r}") from None
    if not callable(target):
        raise ConfigurationError(f"user transform {path!r} is not callable")
    return target


class UserTransform:
    """Calls a user function on each request; what it returns replaces the request."""

    def __init__(self, path: str, function: UserFunction | None = None) -> None:
        self.name = path
        self.function = function if function is not None else load_user_function(path)

    def apply(self, req: HttpRequest) -> list[HttpRequest]:
        """What the function made of ``req``; a TypeError when it returned something other than requests."""
        result = self.function(req)
        if result is None:
            return []
        if isinstance(result, HttpRequest):
            return [result]
        if isinstance(result, (list, tuple)) and all(isinstance(r, HttpRequest) for r in result):
            return list(result)
        raise TypeError(f"returned {type(result).__name__}, not None, an HttpRequest or a list of HttpRequest")

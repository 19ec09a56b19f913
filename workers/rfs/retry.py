"""Retrying a request to the target on throttling and transient failures, with exponential backoff and jitter."""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import TypeVar

from opensearchpy.exceptions import ConnectionError as ClientConnectionError
from opensearchpy.exceptions import TransportError

RETRYABLE_STATUS = frozenset({429, 502, 503, 504})
T = TypeVar("T")


def is_retryable(exc: Exception) -> bool:
    """Connection errors and HTTP 429/502/503/504 are worth another try; anything else is not."""
    if isinstance(exc, ClientConnectionError):
        return True
    return isinstance(exc, TransportError) and isinstance(exc.status_code, int) and exc.status_code in RETRYABLE_STATUS


def backoff(attempt: int, initial_s: float, max_s: float, rng: random.Random | None = None) -> float:
    """The wait before retry ``attempt`` (1-based): exponential, capped, with "equal jitter" (never 0)."""
    ceiling = min(max_s, initial_s * (2 ** attempt))
    return ceiling * (0.5 + (rng or random).random() / 2)


def call_with_retries(func: Callable[[], T], *, retries: int = 8, initial_s: float = 0.5, max_s: float = 30.0,
                      sleep: Callable[[float], None] = time.sleep) -> T:
    """``func()``, retried on retryable errors; the last error is raised when retries run out."""
    attempt = 0
    while True:
        try:
            return func()
        except Exception as exc:
            attempt += 1
            if attempt > retries or not is_retryable(exc):
                raise
            sleep(backoff(attempt, initial_s, max_s))

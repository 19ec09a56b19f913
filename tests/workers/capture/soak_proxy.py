"""The proxy as the soak runs it: ``python -m workers.capture``, plus the soak id (the X-Soak-Id header) of every
capture record Kafka did not acknowledge, one a line, in the file $SOAK_FAILED_LOG. With it the soak tells a lost
capture (failed, not in Kafka) from a possibly persisted one (failed as far as the proxy knows, yet in Kafka: the
broker stopped after writing it and before answering)."""

from __future__ import annotations

import os
import re
from typing import Any

from workers.capture import kafka_sink
from workers.capture.cli import app

_SOAK_ID = re.compile(rb"\r\nx-soak-id: ([0-9]+-[0-9]+)\r\n", re.IGNORECASE)


def _install(path: str) -> None:
    out = open(path, "a", buffering=1)  # noqa: SIM115 (open for the process's life)
    delivered = kafka_sink.KafkaSink._delivered

    def spy(*args: Any) -> None:
        err, msg = args[-2], args[-1]
        if err is not None and msg is not None:
            found = _SOAK_ID.search(msg.value() or b"")
            if found:
                out.write(found.group(1).decode() + "\n")
        delivered(*args)

    kafka_sink.KafkaSink._delivered = staticmethod(spy)  # type: ignore[assignment,method-assign]


if __name__ == "__main__":
    _install(os.environ["SOAK_FAILED_LOG"])
    app()(prog_name="soak_proxy")

"""Where transactions the replayer gave up on are kept: JSONL files, S3 objects, or nowhere (the backfill's options).

A record holds where the transaction was in the topic, why it was given up, the request as it would have been sent
(the body as text when it is UTF-8, else base64) and the target's last answer, so a person can resend or discard it.
"""

from __future__ import annotations

import base64
import os
import threading
import time
from pathlib import Path
from typing import Any

import orjson

from workers.replay.messages import HttpRequest, ReplayedTransaction

_BODY_LIMIT = 1 << 20


def _body(data: bytes) -> dict[str, Any]:
    clipped = data[:_BODY_LIMIT]
    try:
        return {"body": clipped.decode(), "body_truncated": len(data) > _BODY_LIMIT}
    except UnicodeDecodeError:
        return {"body_base64": base64.b64encode(clipped).decode(), "body_truncated": len(data) > _BODY_LIMIT}


def _request(request: HttpRequest | None) -> dict[str, Any] | None:
    if request is None:
        return None
    # Headers are left out: the captured ones may hold the client's credentials.
    return {"method": request.method, "target": request.target, **_body(request.body)}


def letter(tx: ReplayedTransaction, reason: str) -> dict[str, Any]:
    """The dead-letter record of ``tx``."""
    last = tx.exchanges[-1] if tx.exchanges else None
    return {
        "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "conn": tx.conn, "seq": tx.seq,
        "partition": tx.partition, "offset": tx.offset, "reason": reason,
        "source_status": tx.source_response.status if tx.source_response else None,
        "captured_request": _request(tx.source_request),
        "sent": [_request(e.request) for e in tx.exchanges],
        "target_status": last.response.status if last and last.response else None,
        "target_response": last.response.body[:4096].decode("utf-8", "replace") if last and last.response else None,
        "target_error": last.error if last else None,
    }


class ReplayDeadLetters:
    """Appends letters to ``{store}/replay/{group}/{member}.jsonl`` or writes ``s3://…/replay/{group}/…`` objects."""

    def __init__(self, spec: str | None, group: str, member: str, *, s3_endpoint: str | None = None,
                 s3_region: str | None = None) -> None:
        self.count = 0
        self._lock = threading.Lock()
        self._s3: Any = None
        self._path: Path | None = None
        if not spec or spec.lower() in ("off", "none", "false"):
            self.location = "off"
        elif spec.startswith("s3://"):
            from workers.snapshot.blobstore import s3_client

            bucket, _, prefix = spec[len("s3://"):].partition("/")
            self._bucket = bucket
            self._prefix = "/".join(p for p in (prefix.strip("/"), "replay", group, member) if p)
            self._s3 = s3_client(endpoint=s3_endpoint, region=s3_region)
            self.location = f"s3://{bucket}/{self._prefix}/"
        else:
            self._path = Path(spec.removeprefix("file://")) / "replay" / group / f"{member}.jsonl"
            self.location = str(self._path)

    def write(self, tx: ReplayedTransaction, reason: str) -> None:
        """Keep ``tx`` with ``reason`` (counted even when the store is off)."""
        with self._lock:
            self.count += 1
            line = orjson.dumps(letter(tx, reason)) + b"\n"
            if self._path is not None:
                self._path.parent.mkdir(parents=True, exist_ok=True)
                with open(self._path, "ab") as out:
                    out.write(line)
                    out.flush()
                    os.fsync(out.fileno())
            elif self._s3 is not None:
                key = f"{self._prefix}/{time.time_ns()}-{tx.conn}-{tx.seq}.json"
                self._s3.put_object(Bucket=self._bucket, Key=key, Body=line)

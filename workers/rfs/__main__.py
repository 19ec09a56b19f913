"""``python -m workers.rfs``: backfill shards from a snapshot into the target (one shard under Dagster Pipes)."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from opensearchpy.exceptions import TransportError

from workers.common.clusters import Auth, auth_from_flags, parse_connection
from workers.common.errors import ConfigurationError, MigrationError
from workers.metadata.rename import RenameRules
from workers.rfs.options import (
    DEFAULT_COORDINATION_INDEX,
    BackfillOptions,
    ShardWorkerRequest,
    SnapshotSource,
    WorkerLog,
)
from workers.rfs.progress import LogProgress, Progress, RichProgress

PIPES_ENV = "DAGSTER_PIPES_CONTEXT"


def build_parser() -> argparse.ArgumentParser:
    """The worker's command-line options (every one also settable through Dagster Pipes extras)."""
    p = argparse.ArgumentParser(prog="python -m workers.rfs",
                                description="Backfill one shard (or several, one after another) from a snapshot "
                                            "repository into the target.")
    src = p.add_argument_group("snapshot")
    src.add_argument("--snapshot-repo", required=True, help="file:///path or s3://bucket/prefix")
    src.add_argument("--snapshot", required=True)
    src.add_argument("--index", required=True, help="source index name")
    src.add_argument("--shard", required=True,
                     help="N; or several shards of the index, run one after another sharing the connections: "
                          "N,M  N-M  all. With several, a shard another worker holds is left to it")
    src.add_argument("--s3-endpoint")
    src.add_argument("--s3-region")
    src.add_argument("--no-verify-checksums", action="store_true", help="skip the checksum pass over the files")
    tgt = p.add_argument_group("target")
    tgt.add_argument("--target-endpoint", required=True, help="http(s)://host:port")
    tgt.add_argument("--target-username")
    tgt.add_argument("--target-password-env", help="name of the environment variable holding the password")
    tgt.add_argument("--target-aws-region", help="sign requests with AWS SigV4 for this region")
    tgt.add_argument("--target-aws-service", default="es", choices=["es", "aoss"])
    tgt.add_argument("--target-client-cert", help="PEM client certificate, for clusters that authenticate by it")
    tgt.add_argument("--target-client-key", help="its PEM private key (default: in --target-client-cert)")
    tgt.add_argument("--target-ca-cert", help="PEM CA file for the target's certificate")
    tgt.add_argument("--target-insecure", action="store_true", help="do not verify the target's TLS certificate")
    tgt.add_argument("--target-timeout", type=float, default=120.0, help="seconds per request (default 120)")
    bulk = p.add_argument_group("bulk")
    bulk.add_argument("--max-connections", type=int, default=10,
                      help="most bulk requests in flight (default 10); fewer while the target's latency shows "
                           "requests queueing, or it throttles")
    bulk.add_argument("--fixed-concurrency", action="store_true",
                      help="always keep --max-connections requests in flight, whatever the target's latency "
                           "or 429s")
    bulk.add_argument("--documents-per-bulk-request", type=int, help="default: no limit")
    bulk.add_argument("--max-bulk-bytes", type=int, default=10 << 20, help="request body limit (default 10 MiB)")
    bulk.add_argument("--no-gzip", action="store_true", help="send request bodies uncompressed")
    bulk.add_argument("--python-encoder", action="store_true",
                      help="encode every chunk in Python, not with the C extension (the same bytes, about twice "
                           "the CPU; for diagnosis)")
    bulk.add_argument("--no-fingerprint", action="store_true",
                      help="do not fingerprint the documents sent (the validation report then re-reads the shard "
                           "from the snapshot to compare contents)")
    bulk.add_argument("--allowed-doc-exception-types", action="append", default=[],
                      help="target error types that count as success (repeat or comma-separate)")
    bulk.add_argument("--transform", help="a document transformation: package.module:function")
    bulk.add_argument("--rename", action="append", default=[],
                      help="OLD=NEW or regex:PATTERN=REPLACEMENT ($1 or ${name} for groups), the metadata "
                           "migration's rules: give the same ones")
    bulk.add_argument("--type-mode", default="drop", choices=["drop", "index-per-type"],
                      help="Elasticsearch <= 6 types: drop them (the metadata migration's multi-type 'union'), or "
                           "send type T of a multi-type index I to i_t (its 'split'; a single-type index keeps "
                           "its name)")
    bulk.add_argument("--dead-letter", default="dead-letters",
                      help="folder, s3://bucket/prefix, or 'off' (default ./dead-letters)")
    bulk.add_argument("--dead-letter-s3-endpoint",
                      help="S3-compatible endpoint of an s3:// dead-letter store (default: --s3-endpoint when the "
                           "snapshot repository is in S3 too, else AWS)")
    bulk.add_argument("--dead-letter-s3-region", help="its region (default: --s3-region)")
    work = p.add_argument_group("coordination")
    work.add_argument("--coordination-index", default=DEFAULT_COORDINATION_INDEX)
    work.add_argument("--lease-seconds", type=float, default=600.0, help="lease length (default 600)")
    work.add_argument("--worker-id", default="", help="default host:pid")
    work.add_argument("--force", action="store_true", help="run a shard already recorded as completed again")
    out = p.add_argument_group("output")
    out.add_argument("--progress", default="auto", choices=["auto", "bar", "log", "none"],
                     help="auto: a bar when stderr is a terminal, else log lines")
    out.add_argument("--progress-interval", type=float, default=10.0,
                     help="seconds between progress log lines (default 10)")
    out.add_argument("--log-format", default="text", choices=["text", "json"], help="of the lines on stderr")
    out.add_argument("--log-file", help="also append the log lines, as text, to this file (its folder is created)")
    out.add_argument("--log-file-only", action="store_true", help="with --log-file: no log lines on stderr")
    out.add_argument("--json", action="store_true", help="print the result as JSON on stdout")
    out.add_argument("--debug", action="store_true", help="show tracebacks")
    return p


def _auth(ns: argparse.Namespace) -> Auth:
    return auth_from_flags(username=ns.target_username, password_env=ns.target_password_env,
                           aws_region=ns.target_aws_region, aws_service=ns.target_aws_service,
                           client_cert=ns.target_client_cert, client_key=ns.target_client_key)


def parse_shards(spec: str, count: Callable[[], int]) -> list[int]:
    """``--shard``: ``N``, ``N,M,...``, ``N-M`` (inclusive) or ``all`` (``count()`` gives the index's shard count)."""
    if spec.strip() == "all":
        return list(range(count()))
    shards: list[int] = []
    for part in spec.split(","):
        lo, dash, hi = part.strip().partition("-")
        try:
            first, last = int(lo), int(hi) if dash else int(lo)
        except ValueError:
            raise ConfigurationError(f"--shard {spec!r}: expected N, N,M, N-M or all") from None
        if first < 0 or last < first:
            raise ConfigurationError(f"--shard {spec!r}: {part.strip()!r} is not a shard number or range")
        shards += [s for s in range(first, last + 1) if s not in shards]
    return shards


# BackfillOptions fields no flag sets: the retry schedule is tuned in code (tests hold the list to the fields).
NOT_ON_COMMAND_LINE = frozenset({"max_retries", "initial_backoff_s", "max_backoff_s"})


def options_from(ns: argparse.Namespace) -> BackfillOptions:
    """Options from parsed arguments."""
    allowed = tuple(t.strip() for v in ns.allowed_doc_exception_types for t in v.split(",") if t.strip())
    s3_repo = ns.snapshot_repo.startswith("s3://")
    target = parse_connection({"endpoint": ns.target_endpoint, "auth": _auth(ns), "timeout_s": ns.target_timeout,
                               "tls": {"verify": not ns.target_insecure, "ca_file": ns.target_ca_cert}}, "--target")
    return BackfillOptions(
        target=target,
        max_connections=ns.max_connections, adaptive_concurrency=not ns.fixed_concurrency,
        documents_per_bulk_request=ns.documents_per_bulk_request,
        max_bulk_bytes=ns.max_bulk_bytes, gzip=not ns.no_gzip, allowed_doc_exception_types=allowed,
        transform=ns.transform, rename=RenameRules.parse(ns.rename), type_mode=ns.type_mode,
        dead_letter=ns.dead_letter,
        dead_letter_s3_endpoint=ns.dead_letter_s3_endpoint or (ns.s3_endpoint if s3_repo else None),
        dead_letter_s3_region=ns.dead_letter_s3_region or ns.s3_region,
        coordination_index=ns.coordination_index, lease_seconds=ns.lease_seconds,
        force=ns.force, verify_checksums=not ns.no_verify_checksums, worker_id=ns.worker_id,
        native=not ns.python_encoder, fingerprint=not ns.no_fingerprint,
    )


def source_from(ns: argparse.Namespace) -> SnapshotSource:
    """The snapshot to read, from parsed arguments."""
    return SnapshotSource(ns.snapshot_repo, ns.snapshot, ns.s3_endpoint, ns.s3_region)


def log_from(ns: argparse.Namespace) -> WorkerLog:
    """Log and progress settings, from parsed arguments."""
    return WorkerLog(ns.log_file, ns.log_file_only, ns.progress_interval)


class _JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return json.dumps({"time": self.formatTime(record), "level": record.levelname, "logger": record.name,
                           "message": record.getMessage()})


def _logging(log: WorkerLog, log_format: str) -> None:
    text = logging.Formatter("%(asctime)s %(message)s")
    handlers: list[logging.Handler] = []
    if log.file:
        path = Path(log.file)
        path.parent.mkdir(parents=True, exist_ok=True)
        handlers.append(logging.FileHandler(path, encoding="utf-8"))
        handlers[-1].setFormatter(text)
    if not (log.file and log.file_only):
        handlers.append(logging.StreamHandler(sys.stderr))
        handlers[-1].setFormatter(_JsonFormatter() if log_format == "json" else text)
    logging.basicConfig(level=logging.INFO, handlers=handlers, force=True)
    # opensearch-py logs every request at INFO and each failed one with a traceback at WARNING; the worker
    # reports failures itself, in one line.
    logging.getLogger("opensearch").setLevel(logging.ERROR)


def _progress(kind: str, interval_s: float) -> Progress:
    if kind == "auto":
        kind = "bar" if sys.stderr.isatty() else "log"
    if kind == "log":
        return LogProgress(interval_s)
    return RichProgress() if kind == "bar" else Progress()


def run(argv: Sequence[str]) -> int:
    """Run from command-line arguments; returns the exit code."""
    ns = build_parser().parse_args(argv)
    _logging(log_from(ns), ns.log_format)
    from workers.rfs.worker import run_shards
    from workers.snapshot.blobstore import open_blob_store
    from workers.snapshot.repository import SnapshotRepository

    try:
        options, source = options_from(ns), source_from(ns)
        store = open_blob_store(source.repo, s3_endpoint=source.s3_endpoint, s3_region=source.s3_region)
        shards = parse_shards(
            ns.shard, lambda: SnapshotRepository(store).index_metadata(ns.snapshot, ns.index).number_of_shards)
        progress = _progress(ns.progress, ns.progress_interval)
        results = run_shards(store, ns.snapshot, ns.index, shards, options, progress, skip_leased=len(shards) > 1)
    except MigrationError as exc:
        if ns.debug:
            raise
        logging.getLogger("workers.rfs").error("error: %s", exc)
        return exc.exit_code
    except (TransportError, OSError) as exc:
        if ns.debug:
            raise
        logging.getLogger("workers.rfs").error("error: %s: %s (run with --debug for details)",
                                               exc.__class__.__name__, exc)
        return 1
    if ns.json:
        # --shard N: its result; several (or a range, or all): the list of their results.
        print(json.dumps(results[0].to_dict() if ns.shard.strip().isdigit() else [r.to_dict() for r in results]))
    else:
        for result in results:
            logging.getLogger("workers.rfs").info(
                "%s/%s[%d]: %s, %d documents written, %d dead letters %s", ns.snapshot, ns.index, result.shard,
                result.status, result.docs_written, result.dead_letters, result.dead_letters_by_type or "")
    return 0


def run_under_pipes() -> int:
    """Run as a Dagster Pipes process: the request from the extras, the result reported as materialization metadata."""
    from dagster_pipes import open_dagster_pipes

    with open_dagster_pipes() as pipes:
        request = ShardWorkerRequest.from_extras(pipes.extras)
        _logging(request.log, "json")
        from workers.rfs.worker import run_shard
        from workers.snapshot.blobstore import open_blob_store

        source = request.source
        store = open_blob_store(source.repo, s3_endpoint=source.s3_endpoint, s3_region=source.s3_region)
        result = run_shard(store, source.snapshot, request.index, request.shard, request.options,
                           LogProgress(request.log.progress_interval_s))
        pipes.report_asset_materialization(metadata={
            "status": result.status, "documents": result.docs_written, "bytes": result.bytes_written,
            "dead_letters": result.dead_letters,
            "dead_letters_by_type": {"raw_value": result.dead_letters_by_type, "type": "json"},
            "retries": result.retries, "duration_s": result.seconds,
            "concurrency": {"raw_value": result.concurrency, "type": "json"},
            "checkpoint": {"raw_value": result.checkpoint, "type": "json"},
            # Where this run started: a retry resumes from the checkpoint its predecessor left ({} from the start).
            "resumed_from": {"raw_value": result.resumed_from or {}, "type": "json"},
            "snapshot": result.snapshot,
            # The identity the completion holds for (the asset compares the snapshot's UUID before running again).
            "snapshot_uuid": result.snapshot_uuid,
            "target_uuids": {"raw_value": result.target_uuids, "type": "json"},
            # Per target index: documents sent and their content digest (the buckets stay in the coordination index).
            "fingerprints": {"raw_value": result.fingerprints, "type": "json"},
            **({"restarted_because": result.restarted_because} if result.restarted_because else {}),
        })
    return 0


def main() -> None:
    """Entry point."""
    if os.environ.get(PIPES_ENV):
        sys.exit(run_under_pipes())
    sys.exit(run(sys.argv[1:]))


if __name__ == "__main__":
    main()

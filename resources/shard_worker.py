"""Runs one shard's backfill worker through Dagster Pipes: a subprocess locally, a pod on Kubernetes."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import dagster as dg
from pydantic import Field

from resources.kubernetes_pods import run_worker_pod, worker_pod_spec
from workers.common.clusters import BasicAuth
from workers.common.shard_key import ShardKey
from workers.rfs.options import BackfillOptions, ShardWorkerRequest, SnapshotSource, WorkerLog
from workflow_model import WorkflowConfig

# -P: the working directory is not put on sys.path, so a folder there named like a project package (the clone's
# tests/workers, say) cannot shadow it; the run's working directory is whatever the user's shell had.
WORKER_MODULE = ["-P", "-m", "workers.rfs"]
WORKER_COMMAND = ["python", *WORKER_MODULE]


def backfill_options(config: WorkflowConfig, snapshot: dict[str, Any], dead_letter_dir: Path,
                     worker_id: str = "") -> BackfillOptions:
    """The worker's options from the workflow config and the snapshot asset's value; no secret values."""
    backfill, in_s3 = config.backfill, snapshot["uri"].startswith("s3://")
    dead_letter_s3 = backfill.dead_letter_s3
    return BackfillOptions(
        target=config.target.connection(),
        max_connections=backfill.max_connections, adaptive_concurrency=backfill.adaptive_concurrency,
        documents_per_bulk_request=backfill.documents_per_bulk_request, max_bulk_bytes=backfill.max_bulk_bytes,
        gzip=backfill.gzip, allowed_doc_exception_types=tuple(backfill.allowed_doc_exception_types),
        transform=backfill.transform, rename=config.metadata.rename_rules, type_mode=config.backfill_type_mode,
        dead_letter=str(dead_letter_dir) if backfill.dead_letter == "local" else backfill.dead_letter,
        # An s3:// dead-letter store defaults to the snapshot repository's S3 settings when that is in S3 too.
        dead_letter_s3_endpoint=(dead_letter_s3.endpoint if dead_letter_s3 else
                                 snapshot.get("s3_endpoint") if in_s3 else None),
        dead_letter_s3_region=dead_letter_s3.region if dead_letter_s3 else snapshot.get("s3_region") if in_s3 else None,
        coordination_index=backfill.coordination_index, lease_seconds=backfill.lease_seconds,
        verify_checksums=backfill.verify_checksums, worker_id=worker_id,
    )


def worker_request(config: WorkflowConfig, snapshot: dict[str, Any], dead_letter_dir: Path, index: str,
                   shard: int, worker_id: str = "") -> ShardWorkerRequest:
    """Everything the worker of shard ``index``/``shard`` is given.

    ``worker_id`` names the lease holder: the same for every attempt of one run, so that a retry takes over the
    lease its killed predecessor left (rather than waiting for it to expire) and resumes from its checkpoint.
    """
    in_s3 = snapshot["uri"].startswith("s3://")
    source = SnapshotSource(snapshot["uri"], snapshot["snapshot"], snapshot.get("s3_endpoint") if in_s3 else None,
                            snapshot.get("s3_region") if in_s3 else None)
    return ShardWorkerRequest(source, index, shard, backfill_options(config, snapshot, dead_letter_dir, worker_id))


def local_paths(request: ShardWorkerRequest) -> list[str]:
    """The worker's own local folders a pod must see: a filesystem repository, a dead-letter folder."""
    paths = []
    if not request.source.repo.startswith("s3://"):
        paths.append(request.source.repo.removeprefix("file://"))
    dead_letter = request.options.dead_letter
    if dead_letter and dead_letter != "off" and "://" not in dead_letter:
        paths.append(dead_letter)
    return paths


class ShardWorkerResource(dg.ConfigurableResource):
    """Starts the backfill worker of one shard and streams its logs and metadata back through Pipes."""

    python: str = sys.executable
    log_dir: str | None = Field(default=None, description="local workers also write their log lines to "
                                "LOG_DIR/<index>-<shard>.log (the in-process drivers set it)")
    log_stderr: bool = Field(default=True, description="with log_dir: also write them on stderr (the run's "
                             "captured output)")

    def _log(self, partition_key: str) -> WorkerLog:
        if not self.log_dir:
            return WorkerLog()
        return WorkerLog(str(Path(self.log_dir) / ShardKey.parse(partition_key).file_name()),
                         file_only=not self.log_stderr)

    def run(self, context: dg.AssetExecutionContext, config: WorkflowConfig,
            request: ShardWorkerRequest) -> dg.MaterializeResult:
        """Run the worker for ``request`` and return its reported materialization."""
        if config.backfill.worker_mode == "kubernetes":
            kube = config.backfill.kubernetes
            auth = request.options.target.auth
            password_envs = [auth.password_env] if isinstance(auth, BasicAuth) else []
            spec = worker_pod_spec(kube, password_envs, local_paths(request))
            log = self._log(context.partition_key)
            return run_worker_pod(context, kube, WORKER_COMMAND, spec, request.to_extras(), log.file,
                                  not log.file_only)
        local = ShardWorkerRequest(request.source, request.index, request.shard, request.options,
                                   self._log(context.partition_key))
        return dg.PipesSubprocessClient().run(
            context=context, command=[self.python, *WORKER_MODULE], extras=local.to_extras(),
        ).get_materialize_result()

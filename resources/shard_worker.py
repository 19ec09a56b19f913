"""Runs one shard's backfill worker through Dagster Pipes: a subprocess locally, a pod on Kubernetes."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import dagster as dg
from pydantic import Field

from workflow_model import WorkflowConfig
from workflow_model.config import BasicAuthModel, KubernetesWorkerModel, SigV4AuthModel

# -P: the working directory is not put on sys.path, so a folder there named like a project package (the clone's
# tests/workers, say) cannot shadow it; the run's working directory is whatever the user's shell had.
WORKER_MODULE = ["-P", "-m", "workers.rfs"]
WORKER_COMMAND = ["python", *WORKER_MODULE]


def worker_extras(config: WorkflowConfig, snapshot: dict[str, Any], dead_letter_dir: Path) -> dict[str, Any]:
    """The worker's options as Pipes extras (its command-line flags with underscores); no secret values."""
    target, backfill = config.target, config.backfill
    extras: dict[str, Any] = {
        "snapshot_repo": snapshot["uri"], "snapshot": snapshot["snapshot"],
        "s3_endpoint": snapshot.get("s3_endpoint") if snapshot["uri"].startswith("s3://") else None,
        "s3_region": snapshot.get("s3_region") if snapshot["uri"].startswith("s3://") else None,
        "target_endpoint": target.endpoint.rstrip("/"), "target_timeout": target.timeout_s,
        "target_ca_cert": target.tls.ca_file, "target_insecure": not target.tls.verify,
        "max_connections": backfill.max_connections, "fixed_concurrency": not backfill.adaptive_concurrency,
        "documents_per_bulk_request": backfill.documents_per_bulk_request, "max_bulk_bytes": backfill.max_bulk_bytes,
        "no_gzip": not backfill.gzip, "allowed_doc_exception_types": list(backfill.allowed_doc_exception_types),
        "transform": backfill.transform, "rename": list(config.metadata.rename), "type_mode": config.backfill_type_mode,
        "dead_letter": str(dead_letter_dir) if backfill.dead_letter == "local" else backfill.dead_letter,
        "dead_letter_s3_endpoint": backfill.dead_letter_s3.endpoint if backfill.dead_letter_s3 else None,
        "dead_letter_s3_region": backfill.dead_letter_s3.region if backfill.dead_letter_s3 else None,
        "coordination_index": backfill.coordination_index, "lease_seconds": backfill.lease_seconds,
        "no_verify_checksums": not backfill.verify_checksums,
    }
    if isinstance(target.auth, BasicAuthModel):
        # The name of the variable travels, never the password: the worker reads it from its own environment.
        extras["target_username"], extras["target_password_env"] = target.auth.username, target.auth.password_env
    elif isinstance(target.auth, SigV4AuthModel):
        extras["target_aws_region"], extras["target_aws_service"] = target.auth.region, target.auth.service
    return {k: v for k, v in extras.items() if v is not None}


def shard_log_name(partition_key: str) -> str:
    """A shard worker's log file name: ``index:shard`` with the colon made safe for every filesystem."""
    index, _, shard = partition_key.rpartition(":")
    return f"{index}-{shard}.log"


def shard_pod_spec(kube: KubernetesWorkerModel, password_envs: list[str]) -> dict[str, Any]:
    """The pod spec of a shard worker: resources sized for one shard, secrets from a Kubernetes secret."""
    container: dict[str, Any] = {
        "name": "dagster-pipes-execution",
        "resources": {"requests": {"cpu": kube.cpu, "memory": kube.memory},
                      "limits": {"cpu": kube.cpu, "memory": kube.memory}},
    }
    if kube.secret and password_envs:
        container["env"] = [{"name": name, "valueFrom": {"secretKeyRef": {"name": kube.secret, "key": name}}}
                            for name in password_envs]
    spec: dict[str, Any] = {"containers": [container], "restartPolicy": "Never"}
    if kube.service_account:
        spec["serviceAccountName"] = kube.service_account
    return spec


class ShardWorkerResource(dg.ConfigurableResource):
    """Starts the backfill worker of one shard and streams its logs and metadata back through Pipes."""

    python: str = sys.executable
    log_dir: str | None = Field(default=None, description="local workers also write their log lines to "
                                "LOG_DIR/<index>-<shard>.log (the in-process drivers set it)")
    log_stderr: bool = Field(default=True, description="with log_dir: also write them on stderr (the run's "
                             "captured output)")

    def _log_extras(self, context: dg.AssetExecutionContext) -> dict[str, Any]:
        if not self.log_dir:
            return {}
        return {"log_file": str(Path(self.log_dir) / shard_log_name(context.partition_key)),
                "log_file_only": not self.log_stderr}

    def run(self, context: dg.AssetExecutionContext, config: WorkflowConfig,
            extras: dict[str, Any]) -> dg.MaterializeResult:
        """Run the worker for ``context.partition_key`` and return its reported materialization."""
        if config.backfill.worker_mode == "kubernetes":
            from dagster_k8s import PipesK8sClient

            kube = config.backfill.kubernetes
            password_envs = [extras["target_password_env"]] if "target_password_env" in extras else []
            return PipesK8sClient().run(
                context=context, image=kube.image, command=WORKER_COMMAND, namespace=kube.namespace,
                base_pod_spec=shard_pod_spec(kube, password_envs), extras=extras,
            ).get_materialize_result()
        return dg.PipesSubprocessClient().run(
            context=context, command=[self.python, *WORKER_MODULE], extras={**extras, **self._log_extras(context)},
        ).get_materialize_result()

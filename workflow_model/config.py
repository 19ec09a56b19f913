"""The workflow file's model: every key, its default and its check (unknown keys are errors)."""

from __future__ import annotations

import hashlib
import json
import os
import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from workers.capture.options import default_reverse_topic
from workers.common.clusters import BasicAuth, ClusterConnection
from workers.common.errors import ConfigurationError
from workers.cutover.reverse import DEFAULT_REVERSE_GROUP
from workers.metadata.rename import RenameRules
from workers.rfs.options import DEFAULT_COORDINATION_INDEX
from workflow_model.steps import GATE_NAMES, Step


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ClusterModel(ClusterConnection):
    """One cluster of the workflow: the connection (the model every layer shares) and, optionally, its version."""

    version: str | None = Field(default=None, description="ENGINE:VERSION, e.g. elasticsearch:7.10.2; else asked")

    def connection(self) -> ClusterConnection:
        """The connection alone, as workers and clients take it."""
        return ClusterConnection.model_validate(self.model_dump(exclude={"version"}))


class S3Model(_Strict):
    """Where an ``s3://`` repository is served from."""

    region: str = "us-east-1"
    endpoint: str | None = Field(default=None, description="S3-compatible endpoint (MinIO, moto); empty: AWS")
    # Left out of dumps while unset, so that configs written before it existed keep their snapshot fingerprint.
    role_arn: str | None = Field(
        default=None, exclude_if=lambda value: value is None,
        description="IAM role the source assumes to write the snapshot (arn:aws:iam::ACCOUNT:role/NAME); "
                    "Amazon OpenSearch Service requires it, self-managed clusters take credentials from their keystore")

    @field_validator("role_arn")
    @classmethod
    def _role_arn(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(r"arn:aws[-a-z]*:iam::\d{12}:role/[\w+=,.@/-]+", value):
            raise ValueError(f"role_arn {value!r} is not an IAM role ARN: expected "
                             "arn:aws:iam::<12-digit account>:role/NAME (arn:aws-cn:… and arn:aws-us-gov:… too)")
        return value


class RepositoryModel(_Strict):
    """The snapshot repository: its name on the source and where its files are."""

    name: str = Field(default="migration_assistant", pattern=r"^[a-z0-9_\-]+$")
    location: str = Field(description="filesystem path shared by the source and the workers, or s3://bucket/prefix")
    s3: S3Model = Field(default_factory=S3Model)

    @property
    def is_s3(self) -> bool:
        """True for an ``s3://`` repository."""
        return self.location.startswith("s3://")

    @property
    def uri(self) -> str:
        """The location as the snapshot reader takes it."""
        if self.is_s3 or self.location.startswith("file://"):
            return self.location
        return "file://" + os.path.abspath(self.location)

    @field_validator("location")
    @classmethod
    def _location(cls, value: str) -> str:
        if value.startswith("s3://"):
            if not re.fullmatch(r"s3://[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9](/.*)?", value):
                raise ValueError(f"{value!r} is not s3://bucket[/prefix]")
        elif not (value.startswith("/") or value.startswith("file:///")):
            raise ValueError(f"{value!r} must be an absolute path, file:///path or s3://bucket/prefix")
        return value


class SnapshotModel(_Strict):
    """The snapshot the migration reads: one to create through the source's API, or an existing one."""

    repository: RepositoryModel
    create: str | None = Field(default=None, description="name of the snapshot to create; {timestamp} is expanded")
    existing: str | None = Field(default=None, description="name of a snapshot already in the repository")
    indices: list[str] = Field(default_factory=lambda: ["*"],
                               description="the source's own index expression, one item per entry ('-x' excludes)")
    include_global_state: bool = True

    @model_validator(mode="after")
    def _one_of(self) -> SnapshotModel:
        if bool(self.create) == bool(self.existing):
            raise ValueError("set exactly one of 'create' (a snapshot to take) or 'existing' (one to use)")
        return self


class MetadataTransformModel(_Strict):
    """How objects change on the way (see docs/metadata-migration.md)."""

    replicas: int | None = Field(default=None, ge=0, description="replica count on the target; empty: the source's")
    multi_type: Literal["union", "split"] = "union"
    allow_existing: bool = False


class MetadataModel(_Strict):
    """Which templates and indices are migrated, and how."""

    index_allowlist: list[str] = Field(default_factory=list)
    index_template_allowlist: list[str] = Field(default_factory=list)
    component_template_allowlist: list[str] = Field(default_factory=list)
    transformations: MetadataTransformModel = Field(default_factory=MetadataTransformModel)
    rename: list[str] = Field(default_factory=list, description="OLD=NEW or regex:PATTERN=REPLACEMENT")

    @field_validator("rename")
    @classmethod
    def _rename(cls, value: list[str]) -> list[str]:
        try:
            RenameRules.parse(value)
        except ConfigurationError as exc:
            raise ValueError(str(exc)) from None
        return value

    @property
    def rename_rules(self) -> RenameRules:
        """The rules, parsed (the backfill applies these same ones to its documents' index names)."""
        return RenameRules.parse(self.rename)


class PodVolumeModel(_Strict):
    """A volume mounted into worker pods: a folder of the node (``host_path``) or a persistent volume claim."""

    name: str = Field(pattern=r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
    mount_path: str = Field(pattern=r"^/", description="where the worker sees it (an absolute path)")
    host_path: str | None = Field(default=None, pattern=r"^/")
    claim: str | None = Field(default=None, description="a PersistentVolumeClaim in the pods' namespace")
    read_only: bool = False

    @model_validator(mode="after")
    def _one_source(self) -> PodVolumeModel:
        if (self.host_path is None) == (self.claim is None):
            raise ValueError(f"volume {self.name!r}: give exactly one of host_path or claim")
        return self


class KubernetesWorkerModel(_Strict):
    """Where workers run as pods (``backfill.worker_mode: kubernetes``), and how their pods are made."""

    image: str = "migration-assistant-worker:latest"
    namespace: str = "migration"
    cpu: str = "2"
    memory: str = "2Gi"
    service_account: str | None = Field(default=None, description="the pods' service account (they call no "
                                        "Kubernetes API: its token is not mounted)")
    secret: str | None = Field(default=None, description="Kubernetes secret holding the password env variables")
    kubeconfig: str | None = Field(default=None, description="the kubeconfig Dagster creates pods with; empty: the "
                                   "in-cluster service account inside a pod, else ~/.kube/config")
    context: str | None = Field(default=None, description="the kubeconfig's context; empty: its current one")
    volumes: list[PodVolumeModel] = Field(default_factory=list, description="extra volumes for the pods")
    mount_local_paths: bool = Field(default=True, description="mount a filesystem snapshot repository and a local "
                                    "dead-letter folder into the pods at their own paths (hostPath), unless a "
                                    "volume above is mounted there; turn off when the nodes cannot see them")
    unschedulable_timeout_s: float = Field(default=120.0, gt=0, description="a pod the scheduler cannot place for "
                                           "this long fails its run with the scheduler's reason")


class BackfillModel(_Strict):
    """Which indices are backfilled, and the worker's tuning."""

    index_allowlist: list[str] = Field(default_factory=list, description="names or regex:PATTERN; empty: all")
    max_connections: int = Field(default=10, ge=1, le=256)
    adaptive_concurrency: bool = True
    documents_per_bulk_request: int | None = Field(default=None, ge=1)
    max_bulk_bytes: int = Field(default=10 << 20, ge=1024)
    gzip: bool = True
    allowed_doc_exception_types: list[str] = Field(default_factory=list)
    transform: str | None = Field(default=None, pattern=r"^[\w.]+:\w+$", description="package.module:function")
    # None: follow metadata.transformations.multi_type (union: drop, split: index-per-type), so that documents go to
    # the indices the metadata step created.
    type_mode: Literal["drop", "index-per-type"] | None = Field(
        default=None, description="Elasticsearch <= 6 types: drop | index-per-type; empty: as metadata multi_type")
    dead_letter: str = Field(default="local", description="local (beside the Dagster instance), a path, s3://…, off")
    # None: an s3:// dead_letter uses the snapshot repository's S3 settings when that is in S3 too, else AWS.
    dead_letter_s3: S3Model | None = Field(default=None, description="where an s3:// dead_letter is served from")
    coordination_index: str = DEFAULT_COORDINATION_INDEX
    lease_seconds: float = Field(default=600.0, ge=1)
    verify_checksums: bool = True
    retries: int = Field(default=3, ge=0, le=20, description="times a failed shard run is retried on its own "
                         "(from its checkpoint) before it waits for a person")
    retry_delay_s: float = Field(default=10.0, ge=0, description="wait before the first retry; doubled each time")
    check_capacity: bool = Field(default=True, description="the gate before the backfill refuses when the "
                                 "estimated size exceeds the target's room above its high disk watermark")
    worker_mode: Literal["local", "kubernetes"] = "local"
    kubernetes: KubernetesWorkerModel = Field(default_factory=KubernetesWorkerModel)


class ValidationQueryModel(_Strict):
    """A search the validation runs on the source and the target and compares."""

    name: str = Field(min_length=1)
    index: str = Field(default="*", description="the source or target indices it applies to (a glob)")
    body: dict[str, Any] = Field(description="the search body, as sent to _search")


class ValidationScheduleModel(_Strict):
    """The scheduled validation checks (counts, sampled fingerprints, queries) while the migration is live."""

    cron: str = Field(default="*/30 * * * *", description="when the cheap checks re-run (read when the code "
                      "location loads: reload it after a change)")
    enabled: bool | Literal["auto"] = Field(
        default="auto", description="auto: the schedule runs, and its checks start once replay has started (before "
        "that the target does not move); true: they run whenever a report exists; false: the schedule is stopped "
        "(turn it on in the UI, Automation, or with `dagster schedule start validation_checks`)")

    @field_validator("cron")
    @classmethod
    def _cron(cls, value: str) -> str:
        if len(value.split()) != 5:
            raise ValueError(f"{value!r} is not a five-field cron expression (minute hour day month weekday)")
        return value


class ValidationLiveModel(_Strict):
    """Against the live source (replay on): how long in-flight writes may take to converge."""

    settle_s: float = Field(default=5.0, ge=0, le=600, description="wait before each recheck of a differing "
                            "document: at least the replay's lag")
    rechecks: int = Field(default=3, ge=0, le=20, description="rechecks before a difference counts as real")


class ValidationModel(_Strict):
    """How the validation report compares the target with the source."""

    connections: int = Field(default=4, ge=1, le=64, description="parallel slices of the target scan")
    page_size: int = Field(default=1000, ge=10, le=10000)
    sample_buckets: int = Field(default=16, ge=1, le=256, description="of 256 id buckets, hashed by the "
                                "scheduled checks (and `console validate --sample`)")
    max_listed: int = Field(default=100, ge=1, description="differing documents listed per index")
    queries: list[ValidationQueryModel] = Field(default_factory=list, description="searches compared besides the "
                                                "defaults")
    default_queries: bool = True
    replay_tuples: str | None = Field(default=None, description="the replayer's tuples (folder or s3://); their "
                                      "summary joins the report")
    schedule: ValidationScheduleModel = Field(default_factory=ValidationScheduleModel)
    live: ValidationLiveModel = Field(default_factory=ValidationLiveModel)


class ReplayModel(_Strict):
    """Capture and replay: where the capture topic is, how the replayer group runs, when the target has caught up."""

    enabled: bool = Field(default=False, description="replay the capture topic after the backfill")
    kafka_brokers: str = Field(default="", description="bootstrap servers of the capture topic's Kafka")
    topic: str = "capture-traffic"
    group_id: str = "migration-replayer"
    replicas: int = Field(default=1, ge=1, le=64, description="replayer processes (up to one per partition)")
    max_speed: bool = Field(default=True, description="catch up as fast as the target takes it")
    speedup_factor: float = Field(default=1.0, gt=0, description="without max_speed: captured time divided by this")
    overlap_s: float = Field(default=60.0, ge=0, description="seconds replayed before the snapshot's start")
    lag_threshold: int = Field(default=100, ge=0, description="records behind that count as caught up")
    commit_interval_s: float = Field(default=0.5, gt=0, le=60, description="how often replayers commit: part of "
                                     "the time writes are held at a cutover (the drain waits for a commit)")
    steady_s: float = Field(default=30.0, ge=0, description="the lag stays under the threshold this long")
    timeout_s: float = Field(default=6 * 3600.0, gt=0, description="give up waiting after this long")
    transforms: list[str] = Field(default_factory=list, description="user transforms, package.module:function")
    tuples: str = Field(default="local", description="local (beside the Dagster instance), a path, s3://…, off")
    dead_letter: str = Field(default="local", description="local (beside the Dagster instance), a path, s3://…, off")
    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    sasl_mechanism: str | None = None
    sasl_username: str | None = None
    sasl_password_env: str | None = Field(default=None, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$",
                                          description="name of the variable holding the SASL password")
    ssl_ca_file: str | None = None

    @model_validator(mode="after")
    def _brokers_when_enabled(self) -> ReplayModel:
        if self.enabled and not self.kafka_brokers.strip():
            raise ValueError("replay.kafka_brokers is required when replay.enabled is true")
        return self


class CutoverModel(_Strict):
    """Switching live traffic through the capture proxies' admin API, and the reverse replay that makes a back-out
    lose nothing. Off (the cutover step does nothing) unless replay is on and proxies are listed."""

    proxy_admin_urls: list[str] = Field(default_factory=list, description="the admin listener of every capture "
                                        "proxy (each --workers process has its own port), e.g. http://proxy:9300")
    admin_token_env: str = Field(default="PROXY_ADMIN_TOKEN", pattern=r"^[A-Za-z_][A-Za-z0-9_]*$",
                                 description="name of the variable holding the proxies' admin token")
    admin_ca_file: str | None = Field(default=None, description="CA of the admin listeners' certificates (https)")
    admin_insecure: bool = Field(default=False, description="skip TLS verification of the admin listeners")
    reverse_topic: str | None = Field(default=None, description="the topic the proxies capture to once the target "
                                      "serves traffic; default: the capture topic + '.reverse'")
    reverse_group_id: str = Field(default=DEFAULT_REVERSE_GROUP, min_length=1)
    drain_timeout_s: float = Field(default=20.0, gt=0, description="longest wait for the replayer to apply the last "
                                   "captured write while writes are held; past it the cutover aborts")
    max_hold_s: float = Field(default=30.0, gt=0, description="the proxies release held writes after this long "
                              "whatever happens (must exceed drain_timeout_s)")

    @model_validator(mode="after")
    def _hold_exceeds_drain(self) -> CutoverModel:
        if self.max_hold_s <= self.drain_timeout_s:
            raise ValueError(f"cutover.max_hold_s ({self.max_hold_s}) must exceed cutover.drain_timeout_s "
                             f"({self.drain_timeout_s}): the proxies would release writes while the drain waits")
        return self

    def reverse_topic_of(self, topic: str) -> str:
        """The reverse capture topic for the capture ``topic``."""
        return self.reverse_topic or default_reverse_topic(topic)


class ApprovalsModel(_Strict):
    """Which gates a person must approve; skipped gates are approved by the workflow itself (and recorded)."""

    skip_all: bool = False
    skip: list[str] = Field(default_factory=list, description="gates the workflow approves itself")

    @field_validator("skip")
    @classmethod
    def _known_gates(cls, names: list[str]) -> list[str]:
        unknown = [n for n in names if n not in GATE_NAMES]
        if unknown:
            raise ValueError(f"unknown gate(s) {', '.join(unknown)}; gates: {', '.join(GATE_NAMES)}")
        return names

    def skipped(self, gate: str) -> bool:
        """True when ``gate`` needs no person."""
        return self.skip_all or gate in self.skip


class WorkflowConfig(_Strict):
    """A whole migration: source, target, snapshot, metadata, backfill and approvals."""

    version: Literal[1] = 1
    source: ClusterModel
    target: ClusterModel
    snapshot: SnapshotModel
    metadata: MetadataModel = Field(default_factory=MetadataModel)
    backfill: BackfillModel = Field(default_factory=BackfillModel)
    replay: ReplayModel = Field(default_factory=ReplayModel)
    cutover: CutoverModel = Field(default_factory=CutoverModel)
    approvals: ApprovalsModel = Field(default_factory=ApprovalsModel)
    validation: ValidationModel = Field(default_factory=ValidationModel)

    @model_validator(mode="after")
    def _type_modes_agree(self) -> WorkflowConfig:
        chosen, expected = self.backfill.type_mode, self.backfill_type_mode
        if chosen is not None and chosen != expected:
            raise ValueError(
                f"backfill.type_mode {chosen!r} contradicts metadata.transformations.multi_type "
                f"{self.metadata.transformations.multi_type!r}: the backfill would write into indices the metadata "
                f"step does not create; use type_mode {expected!r} or leave it out")
        return self

    @property
    def backfill_type_mode(self) -> Literal["drop", "index-per-type"]:
        """How the backfill treats Elasticsearch <= 6 types: as the metadata migration's multi-type handling."""
        return "index-per-type" if self.metadata.transformations.multi_type == "split" else "drop"

    @property
    def cutover_enabled(self) -> bool:
        """Capture and replay on, and proxies to switch: otherwise the cutover step has nothing to do."""
        return self.replay.enabled and bool(self.cutover.proxy_admin_urls)

    def approves_itself(self, gate: str) -> bool:
        """True when the workflow approves ``gate`` on its own: skipped by ``approvals``, or the cutover's gate when
        there is nothing to switch (a person would approve a step that does nothing)."""
        return self.approvals.skipped(gate) or (gate == Step.CUTOVER_APPROVAL and not self.cutover_enabled)

    def snapshot_fingerprint(self) -> str:
        """A digest of what decides the snapshot and its shards: when it changes, a new submit takes a new one."""
        scope = {"snapshot": self.snapshot.model_dump(mode="json"), "source": self.source.endpoint,
                 "backfill_indices": self.backfill.index_allowlist}
        return hashlib.sha256(json.dumps(scope, sort_keys=True).encode()).hexdigest()[:16]

    def missing_secrets(self) -> list[str]:
        """Environment variables the config names for passwords that are not set, with the key naming each."""
        missing = []
        for role in ("source", "target"):
            auth = getattr(self, role).auth
            if isinstance(auth, BasicAuth) and auth.password_env not in os.environ:
                missing.append(f"{role}.auth.password_env: environment variable {auth.password_env} is not set")
        return missing

    def require_secrets(self) -> None:
        """Raise a ConfigurationError naming each password variable that is not set."""
        missing = self.missing_secrets()
        if missing:
            raise ConfigurationError("; ".join(missing))

"""Everything a replayer process needs, validated once (the CLI, the Dagster asset and the pods build this)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from workers.common.clusters import ClusterConnection

DEFAULT_GROUP = "migration-replayer"


class ReplayOptions(BaseModel):
    """A replayer's settings: where to read, where to send, how fast, what to keep."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    brokers: str = Field(min_length=1, description="Kafka bootstrap servers")
    topic: str = Field(default="capture-traffic", min_length=1)
    group_id: str = Field(default=DEFAULT_GROUP, min_length=1)
    # librdkafka settings for the brokers' security (workers.capture.kafka_sink.security_config builds them).
    kafka_config: dict[str, str] = Field(default_factory=dict)
    target: ClusterConnection
    speedup_factor: float = Field(default=1.0, gt=0)
    max_speed: bool = False
    # Where a group with no committed offset starts: the topic's beginning, or the first record at or after this
    # time (milliseconds since the epoch). A group that committed resumes at its commits.
    from_timestamp_ms: int | None = Field(default=None, ge=0)
    rename: list[str] = Field(default_factory=list, description="OLD=NEW or regex:PATTERN=REPLACEMENT")
    # restore: the reverse replayer's (typeless traffic sent to the target applied to an Elasticsearch 5/6 source).
    type_mode: Literal["drop", "index-per-type", "restore"] = "drop"
    # index-per-type: per source index, the mapping types that get an index of their own.
    split_types: dict[str, list[str]] = Field(default_factory=dict)
    # restore: per source index, its one mapping type (typeless document paths and bulk actions get it back).
    restore_types: dict[str, str] = Field(default_factory=dict)
    transforms: list[str] = Field(default_factory=list, description="user transforms, module:function")
    gzip_target: bool = False
    tuples: str | None = Field(default=None, description="folder or s3://bucket/prefix; empty: not written")
    dead_letters: str | None = Field(default=None, description="folder or s3://bucket/prefix; empty: off")
    s3_endpoint: str | None = None
    s3_region: str | None = None
    max_connections: int = Field(default=64, ge=1, le=4096, description="connections to the target")
    max_retries: int = Field(default=6, ge=0)
    non_retryable: list[str] | None = Field(default=None, description="bulk item error types never retried")
    # A transaction not finished after this long is dead-lettered; its connection's later ones waited for it.
    transaction_timeout_s: float = Field(default=60.0, gt=0)
    # A transaction whose other records never come (its proxy died mid-message) is given up after this long.
    incomplete_timeout_s: float = Field(default=120.0, gt=0)
    # Reading pauses while this many bytes of transactions wait to be sent (memory bound with a large backlog).
    max_buffered_bytes: int = Field(default=64 << 20, ge=1 << 20)
    commit_interval_s: float = Field(default=1.0, gt=0)
    # On a rebalance, in-flight requests of revoked partitions get this long to finish before they are abandoned.
    revoke_grace_s: float = Field(default=5.0, ge=0)
    status_file: str | None = None
    # Exit once nothing was read for this long and everything read is finished (tests, one-off catch-ups).
    exit_when_idle_s: float | None = Field(default=None, gt=0)
    member: str = Field(default="", description="this process's name in logs, letters and tuples")

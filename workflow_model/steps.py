"""The workflow's steps, named once: every asset, the phases in the order a person follows them, and the gates.

The Dagster layer builds its assets, jobs and sensors from these declarations; the CLIs, the status and the
terminal UI read the same ones, so a gate or phase added here appears everywhere without being re-typed.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from workers.common.errors import ConfigurationError


class Step(StrEnum):
    """Every asset of the workflow, by the name Dagster, the CLIs and the logs use."""

    SOURCE_CLUSTER = "source_cluster"
    TARGET_CLUSTER = "target_cluster"
    SOURCE_SNAPSHOT = "source_snapshot"
    METADATA_EVALUATION = "metadata_evaluation"
    METADATA_APPROVAL = "metadata_approval"
    MIGRATED_METADATA = "migrated_metadata"
    MIGRATED_METADATA_APPROVAL = "migrated_metadata_approval"
    SNAPSHOT_REGISTRATION = "snapshot_registration"
    BACKFILL_APPROVAL = "backfill_approval"
    SHARD_BACKFILL = "shard_backfill"
    BACKFILL_PARITY = "backfill_parity"
    REPLAY_CATCHUP = "replay_catchup"
    VALIDATION_REPORT = "validation_report"
    CUTOVER_APPROVAL = "cutover_approval"
    CUTOVER = "cutover"
    VALIDATION_APPROVAL = "validation_approval"
    MIGRATION_CLEANUP = "migration_cleanup"


@dataclass(frozen=True)
class Gate:
    """An approval step: a person approves the latest ``approves``, which releases ``releases``."""

    step: Step
    approves: Step
    releases: Step
    question: str

    @property
    def name(self) -> str:
        """The step name ``workflow status`` prints and ``workflow approve step`` takes."""
        return self.step.value

    @property
    def job_name(self) -> str:
        """The Dagster job that materializes just this gate."""
        return f"approve_{self.step.value.removesuffix('_approval')}"


# In the order a migration meets them: after the metadata evaluation, after the metadata migration, the last check
# before the backfill, before the cutover (live migrations), and the final approval of the validation.
GATES: tuple[Gate, ...] = (
    Gate(Step.METADATA_APPROVAL, approves=Step.METADATA_EVALUATION, releases=Step.MIGRATED_METADATA,
         question="Approve the evaluated metadata plan before anything is written to the target."),
    Gate(Step.MIGRATED_METADATA_APPROVAL, approves=Step.MIGRATED_METADATA, releases=Step.SNAPSHOT_REGISTRATION,
         question="Approve the metadata now on the target (its indices, templates and aliases) before the "
                  "snapshot is registered for the backfill."),
    Gate(Step.BACKFILL_APPROVAL, approves=Step.SNAPSHOT_REGISTRATION, releases=Step.SHARD_BACKFILL,
         question="Last check before documents are written: the shards and counts in scope, the allow lists, and "
                  "the target's free disk against what the backfill will write."),
    Gate(Step.CUTOVER_APPROVAL, approves=Step.VALIDATION_REPORT, releases=Step.CUTOVER,
         question="Switch live traffic to the target: the validation report and the replay's lag are the evidence; "
                  "the proxies hold writes until the replayer has applied every captured one, then send all "
                  "traffic to the target (a no-op without capture and replay)."),
    Gate(Step.VALIDATION_APPROVAL, approves=Step.VALIDATION_REPORT, releases=Step.MIGRATION_CLEANUP,
         question="Approve the validation report (counts, content fingerprints, metadata and queries of the target "
                  "against the source); the workflow's temporary state is then cleaned up (the migrated data is "
                  "kept)."),
)
GATE_NAMES: tuple[str, ...] = tuple(g.name for g in GATES)

# What `workflow status` lists, in the order a migration goes through them (the cluster observations are not steps
# a person follows).
PHASES: tuple[Step, ...] = (Step.SOURCE_SNAPSHOT, Step.METADATA_EVALUATION, Step.METADATA_APPROVAL,
                            Step.MIGRATED_METADATA, Step.MIGRATED_METADATA_APPROVAL, Step.SNAPSHOT_REGISTRATION,
                            Step.BACKFILL_APPROVAL, Step.SHARD_BACKFILL, Step.BACKFILL_PARITY,
                            Step.REPLAY_CATCHUP, Step.VALIDATION_REPORT, Step.CUTOVER_APPROVAL, Step.CUTOVER,
                            Step.VALIDATION_APPROVAL, Step.MIGRATION_CLEANUP)
# The replay catches up once the backfill is complete and counted (a no-op when replay is off); the validation
# report follows it, so that it checks the target with the captured traffic applied.
REPLAY_FOLLOWS = Step.BACKFILL_PARITY
VALIDATION_FOLLOWS = Step.REPLAY_CATCHUP
# The step after which the workflow has nothing left to do.
LAST_STEP = PHASES[-1]

# The concurrency pool that limits how many shard runs go at once (Dagster's `pool`, sized in the instance).
SHARD_POOL = Step.SHARD_BACKFILL.value


def gate(name: str) -> Gate:
    """The gate named ``name``; an error listing the gates otherwise."""
    for g in GATES:
        if g.name == name:
            return g
    raise ConfigurationError(f"unknown approval step {name!r}; steps: {', '.join(GATE_NAMES)}")


def is_gate(name: str) -> bool:
    """True when ``name`` is an approval step."""
    return name in GATE_NAMES

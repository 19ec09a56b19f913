"""The scheduled validation checks and the job that makes a check turning red visible as a failed run.

The schedule re-runs only the checks of ``validation_report`` (``assets/validation.py``): counts, a rotating sample
of the fingerprints, the queries and the metadata, each recorded as an asset check evaluation. Its cron is the
workflow file's ``validation.schedule.cron`` as it is when the code location loads (reload it after a change).
``validation.schedule.enabled``: ``auto`` (the default) runs the schedule and skips its ticks until replay has started
(before that the target does not move, and the report after the backfill already checked it); ``true`` re-checks
whenever a report exists; ``false`` leaves it stopped (turn it on in the UI, Automation → validation_checks, or with
``dagster schedule start validation_checks``).
"""

import dagster as dg

from workflow_model import load_active
from workflow_model.config import ValidationScheduleModel
from workflow_model.steps import Step

SCHEDULE_NAME = "validation_checks"


def _schedule_settings() -> ValidationScheduleModel:
    """The workflow file's schedule settings; the defaults when no valid file is loaded (the code location must load
    all the same: a bad file is reported where it is used)."""
    try:
        return load_active().validation.schedule
    except Exception:  # any problem with the file: the defaults here, and the file's own error where it is used
        return ValidationScheduleModel()


validation_checks_job = dg.define_asset_job(
    "validation_checks_job",
    selection=dg.AssetSelection.checks_for_assets(dg.AssetKey(Step.VALIDATION_REPORT.value)),
    description="Re-run the validation report's checks alone (counts, sampled fingerprints, metadata, queries).",
    tags={"migration/phase": "validation-checks"},
)


_SETTINGS = _schedule_settings()


def replay_started(instance: dg.DagsterInstance) -> bool:
    """True once the replay catch-up has run with replay on (its no-op materialization says ``replay: off``)."""
    event = instance.get_latest_materialization_event(dg.AssetKey(Step.REPLAY_CATCHUP.value))
    materialization = event.asset_materialization if event is not None else None
    if materialization is None:
        return False
    off = materialization.metadata.get("replay")
    return off is None or off.value != "off"


@dg.schedule(name=SCHEDULE_NAME, job=validation_checks_job, cron_schedule=_SETTINGS.cron,
             default_status=(dg.DefaultScheduleStatus.STOPPED if _SETTINGS.enabled is False
                             else dg.DefaultScheduleStatus.RUNNING),
             description="The cheap validation checks while the migration is live (validation.schedule in the "
                         "workflow file); skipped until a validation report exists and, by default, until replay "
                         "has started.")
def validation_checks_schedule(context: dg.ScheduleEvaluationContext) -> dg.RunRequest | dg.SkipReason:
    """A run of the checks, once there is a report to re-check (and, with ``enabled: auto``, live traffic)."""
    if context.instance.get_latest_materialization_event(dg.AssetKey(Step.VALIDATION_REPORT.value)) is None:
        return dg.SkipReason(f"{Step.VALIDATION_REPORT} has not run yet: nothing to re-check")
    if _SETTINGS.enabled == "auto" and not replay_started(context.instance):
        return dg.SkipReason(f"replay has not started ({Step.REPLAY_CATCHUP} has not run with replay on): the "
                             "target does not move yet (validation.schedule.enabled: true re-checks all the same)")
    return dg.RunRequest()


class AlertConfig(dg.Config):
    """The check that turned red, as the alert sensor saw it."""

    check: str
    message: str


@dg.op(description="Fails, naming the validation check that turned red: the failed run is the alert.")
def validation_check_turned_red(config: AlertConfig) -> None:
    """Raise the alert as a failure."""
    raise dg.Failure(f"validation check {config.check} turned red: {config.message}")


@dg.job(name="validation_alert", tags={"migration/phase": "validation-alert"},
        description="A failed run per validation check that turns red (started by the validation_alerts sensor).")
def validation_alert() -> None:
    """One op that fails."""
    validation_check_turned_red()

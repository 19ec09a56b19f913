"""The workflow's state outside Dagster (coordination records on the target, the repository it registered on the
source), removed the same way by ``workflow reset`` as by the cleanup step, so both leave the same state behind."""

from __future__ import annotations

from typing import Any

from workers.common.clusters import build_client
from workers.common.errors import MigrationError
from workers.lifecycle.cleanup import clean_up
from workflow_model import load_active


def remove_workflow_state(snapshot: dict[str, Any], registration: dict[str, Any], running_shards: list[str]) -> str:
    """Remove what the workflow keeps for the snapshot of the ``source_snapshot`` metadata ``snapshot``; a summary.

    The coordination index is the one the registration (``snapshot_registration`` metadata) recorded, else the
    active config's. Refuses while ``running_shards`` (Dagster's view) is not empty; the cleanup also refuses while
    a lease is live.
    """
    name = snapshot.get("snapshot")
    if not name:
        return "no snapshot recorded: nothing on the clusters to remove"
    if running_shards:
        raise MigrationError(f"shards are running ({', '.join(running_shards[:10])}); wait for them, or reset with "
                             "--keep-target-state")
    config = load_active()
    config.require_secrets()
    repository = str(snapshot.get("registered_repository") or "") or None
    try:
        coordination_index = str(registration.get("coordination_index") or config.backfill.coordination_index)
        report = clean_up(build_client(config.target.connection()), coordination_index, str(name),
                          source=build_client(config.source.connection()) if repository else None,
                          repository=repository)
    except MigrationError:
        raise
    except Exception as exc:  # an unreachable target: say what to do instead of a traceback
        raise MigrationError(f"the workflow's state on the target could not be removed ({exc.__class__.__name__}: "
                             f"{str(exc)[:200]}); `workflow reset --keep-target-state` forgets only Dagster's "
                             "records") from None
    return report.summary()

"""``console validate``: the target against the snapshot it was backfilled from (and the live source's searches), or
against the live source (``--against source``, the default once replay is on: docs/validation.md).

Without ``--snapshot`` it validates the workflow's snapshot (the last ``source_snapshot`` of this Dagster instance);
with ``--snapshot`` (and ``--snapshot-repo`` when the workflow file's repository is not the one), any snapshot the
backfill read. Exit codes: 0 clean, 3 something differs, 1/2 errors.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from migration_pipeline.cli.common import err, handle_errors, out, print_json
from workers.common.errors import ConfigurationError
from workers.snapshot.blobstore import open_blob_store
from workers.snapshot.repository import SnapshotRepository
from workers.validate.render import to_markdown, write_files
from workers.validate.report import ValidationReport
from workers.validate.run import validate as run_validation
from workers.validate.scope import SnapshotScope
from workflow_model import WorkflowConfig, load_active, load_file
from workflow_model.steps import Step
from workflow_model.validation import migration_options, snapshot_scope, source_engine_version, validation_options

DIFFERS = 3


def _workflow_snapshot() -> dict[str, Any]:
    """The last ``source_snapshot`` value of this Dagster instance."""
    import dagster as dg

    from migration_pipeline.definitions import defs

    try:
        value = defs.load_asset_value(Step.SOURCE_SNAPSHOT.value, instance=dg.DagsterInstance.get())
    except Exception as exc:  # no instance, never materialized, storage gone: all say the same to a person
        raise ConfigurationError(f"no snapshot of the workflow to validate ({exc.__class__.__name__}: {exc}); run "
                                 "`workflow submit` first, or name one with --snapshot") from None
    if not isinstance(value, dict):
        raise ConfigurationError(f"{Step.SOURCE_SNAPSHOT} holds no snapshot description; name one with --snapshot")
    return value


def _named_snapshot(config: WorkflowConfig, repo_uri: str | None, name: str) -> SnapshotScope:
    uri = repo_uri or config.snapshot.repository.uri
    s3 = config.snapshot.repository.s3
    store = open_blob_store(uri, s3_endpoint=s3.endpoint, s3_region=s3.region)
    repo = SnapshotRepository(store)
    ref = repo.snapshot(name)
    counts: dict[str, int | None] = {index.name: None for index in repo.indices(name)}
    return SnapshotScope(uri, name, ref.uuid, counts, s3.endpoint, s3.region)


@handle_errors
def validate(
    index: Annotated[list[str] | None, typer.Option("--index", help="a source or target index (repeatable); "
                                                    "default: every index of the snapshot")] = None,
    full: Annotated[bool, typer.Option("--full", help="hash every document (the default)")] = False,
    sample: Annotated[int | None, typer.Option("--sample", min=1, max=256, help="hash only N of the 256 id "
                                               "buckets (every document is still counted)")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print the report as JSON")] = False,
    snapshot: Annotated[str | None, typer.Option("--snapshot", help="validate against this snapshot")] = None,
    snapshot_repo: Annotated[str | None, typer.Option("--snapshot-repo", help="its repository (default: the "
                                                      "workflow file's)")] = None,
    config_file: Annotated[Path | None, typer.Option("--config", help="a workflow file (default: the active "
                                                     "one)")] = None,
    no_queries: Annotated[bool, typer.Option("--no-queries", help="skip the searches on source and "
                                             "target")] = False,
    output: Annotated[Path | None, typer.Option("--output", help="also write report.html/json/md and the "
                                                "plots into this folder")] = None,
    against: Annotated[str | None, typer.Option("--against", help="snapshot | source: compare the target with "
                                                "the snapshot's documents, or with the live source, rechecking "
                                                "writes in flight (default: source when replay.enabled)")] = None,
) -> None:
    """Compare the target with the source: counts, content fingerprints, metadata and searches; exit 3 on a
    difference, listing the differing ids."""
    if full and sample:
        raise ConfigurationError("--full and --sample: choose one")
    if against not in (None, "snapshot", "source"):
        raise ConfigurationError(f"--against {against}: give snapshot or source")
    config = load_file(config_file) if config_file else load_active()
    config.require_secrets()
    scope = _named_snapshot(config, snapshot_repo, snapshot) if snapshot else snapshot_scope(_workflow_snapshot())
    options = validation_options(config, mode="sample" if sample else "full", sample_buckets=sample,
                                 indices=tuple(index or ()), queries=not no_queries,
                                 against="source" if against == "source" else "snapshot" if against else None)
    report = run_validation(scope, options, metadata_options=migration_options(config),
                            source_version=source_engine_version(config),
                            replay_tuples=config.validation.replay_tuples)
    if output is not None:
        paths = write_files(report, output)
        err.print(f"report written: {paths['html']}")
    if as_json:
        print_json(report.to_dict())
    else:
        _print(report)
    if not report.clean:
        raise typer.Exit(DIFFERS)


def _print(report: ValidationReport) -> None:
    out.print(to_markdown(report), markup=False, highlight=False)
    for d in report.differences:
        out.print(f"{d.kind}: {d.index}/{d.id}", markup=False, highlight=False)

"""``workflow``: drive the migration in Dagster (submit, status, approve, log; added by the workflow issue)."""

from __future__ import annotations

import typer

from migration_pipeline.cli.common import out

app = typer.Typer(help="Drive the migration workflow in Dagster.", no_args_is_help=True, add_completion=False)


@app.command()
def version() -> None:
    """Print the migration assistant's version."""
    from importlib.metadata import version as pkg_version

    out.print(pkg_version("migration-assistant"))


if __name__ == "__main__":
    app()

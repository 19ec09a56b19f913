"""The workflow config as a Dagster resource: every asset reads its section of the same active file."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
from pydantic import Field

from workflow_model import WorkflowConfig, active_config_path, load_file


class WorkflowResource(dg.ConfigurableResource):
    """The active workflow file (``workflow configure --load``), or the one at ``config_path``."""

    config_path: str | None = Field(default=None, description="a workflow YAML file; empty: the active one")

    def path(self) -> Path:
        """Where the config is read from."""
        return Path(self.config_path) if self.config_path else active_config_path()

    def dead_letter_dir(self) -> Path:
        """Where ``backfill.dead_letter: local`` keeps documents the target refused: beside the config file."""
        return self.path().parent / "dead-letters"

    def validation_dir(self) -> Path:
        """Where the validation reports (HTML, JSON, Markdown, plots) are written, one folder per run: beside the
        config file."""
        return self.path().parent / "validation"

    def replay_dir(self) -> Path:
        """Where the local replayer groups keep their records, logs and tuples: beside the config file (the place
        ``console replay`` uses too)."""
        return self.path().parent / "replay"

    def load(self) -> WorkflowConfig:
        """The validated config (read at each use, so a new ``--load`` needs no code-location reload)."""
        path = self.path()
        if not path.is_file():
            raise dg.Failure(f"no workflow config at {path}; load one with: workflow configure --load FILE")
        return load_file(path)

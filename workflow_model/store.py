"""Reading, checking and saving workflow files; the active one lives beside the Dagster instance."""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from workers.common.errors import ConfigurationError
from workflow_model.config import WorkflowConfig
from workflow_model.home import dagster_home

CONFIG_ENV = "MIGRATION_WORKFLOW_CONFIG"


def active_config_path() -> Path:
    """``$MIGRATION_WORKFLOW_CONFIG``, else ``$DAGSTER_HOME/migration/workflow.yaml``: one instance, one migration."""
    explicit = os.environ.get(CONFIG_ENV)
    return Path(explicit) if explicit else dagster_home() / "migration" / "workflow.yaml"


def sample_text() -> str:
    """The commented sample (every key with its default)."""
    return resources.files("workflow_model").joinpath("sample.yaml").read_text()


def _where(loc: tuple[Any, ...]) -> str:
    # pydantic puts the discriminator's value in the path of union members (auth.basic.username): keep it, it
    # tells which form of the key was meant.
    return ".".join(str(part) for part in loc) or "(top level)"


def parse(text: str, origin: str) -> WorkflowConfig:
    """Validate YAML text; errors name ``origin`` and every offending key path."""
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigurationError(f"{origin}: not valid YAML: {exc}") from None
    if not isinstance(raw, dict):
        raise ConfigurationError(f"{origin}: expected a mapping of keys at the top level")
    try:
        return WorkflowConfig.model_validate(raw)
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            message = error["msg"]
            if error["type"] == "extra_forbidden":
                message = "unknown key"
            elif error["type"] == "missing":
                message = "required key is missing"
            problems.append(f"  {_where(error['loc'])}: {message}")
        raise ConfigurationError(f"{origin}: invalid workflow config\n" + "\n".join(problems)) from None


def load_file(path: Path) -> WorkflowConfig:
    """A workflow file, validated."""
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigurationError(f"cannot read workflow config {path}: {exc.strerror}") from None
    return parse(text, str(path))


def load_active() -> WorkflowConfig:
    """The active workflow config; a clear error when none was loaded."""
    path = active_config_path()
    if not path.is_file():
        raise ConfigurationError(f"no workflow config is active (looked for {path}); "
                                 "load one with: workflow configure --load FILE (see: workflow configure sample)")
    return load_file(path)


def save_active(text: str) -> Path:
    """Validate ``text`` and make it the active config (atomically); returns where it went."""
    parse(text, "the new workflow config")
    path = active_config_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(text)
    tmp.replace(path)
    return path

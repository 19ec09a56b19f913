"""Where the project keeps its files: the cache folder (downloads, sandboxes) and the Dagster home in it."""

from __future__ import annotations

import os
from pathlib import Path

CACHE_ENV = "MIGRATION_CACHE_DIR"

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



# The instance the project makes for itself: no telemetry, and a run queue sized for a small machine (a shard run
# mostly waits on the target; two at once keep a 2-core target busy without starving it).
DEFAULT_INSTANCE_YAML = """\
telemetry:
  enabled: false
concurrency:
  runs:
    max_concurrent_runs: 4
  pools:
    granularity: run
    default_limit: 2
"""


def dagster_home() -> Path:
    """``$DAGSTER_HOME``, else a persistent folder in the project's cache (so the UI shows past runs)."""
    explicit = os.environ.get("DAGSTER_HOME")
    home = Path(explicit) if explicit else cache_root() / "dagster_home"
    home.mkdir(parents=True, exist_ok=True)
    instance_yaml = home / "dagster.yaml"
    if not instance_yaml.exists():
        instance_yaml.write_text(DEFAULT_INSTANCE_YAML)
    return home


def use_dagster_home() -> Path:
    """Make :func:`dagster_home` the ``$DAGSTER_HOME`` of this process and the ones it starts; returns it.

    Dagster reads the variable itself (``DagsterInstance.get()``, ``dagster dev``, run workers), so every entry point
    of the project calls this before Dagster looks: a shell with nothing exported must work.
    """
    home = dagster_home()
    os.environ["DAGSTER_HOME"] = str(home)
    return home

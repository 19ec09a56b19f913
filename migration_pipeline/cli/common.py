"""What every CLI shares: error reporting without tracebacks, JSON output, the --debug switch."""

from __future__ import annotations

import functools
import json
import os
import sys
from collections.abc import Callable
from typing import Any, ParamSpec, TypeVar

import typer
from rich.console import Console
from rich.markup import escape

from workers.common.errors import MigrationError

P = ParamSpec("P")
R = TypeVar("R")

# soft_wrap: long lines stay whole when the output goes to a file or a pipe (logs, scripts, CI).
out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)

DEBUG_ENV = "MIGRATION_DEBUG"


def quiet_dagster_warnings() -> None:
    """Hide Dagster's beta/preview/supersession/deprecation notices from people using the project's CLIs.

    They are about Dagster's API, which the project pins, and are raised while the definitions load, so this runs
    when the CLI package is imported (before anything imports Dagster) and matches by message and module rather
    than by Dagster's warning classes. Running Dagster directly (``dagster dev``) still shows them.
    """
    import warnings

    warnings.filterwarnings("ignore", message=r".*is currently in (beta|preview)")
    warnings.filterwarnings("ignore", message=r".*(has been superseded|is superseded)")
    warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"dagster.*")
    # The shard workers and other Python subprocesses the CLIs start.
    os.environ.setdefault("PYTHONWARNINGS", "ignore::DeprecationWarning")


def set_debug(enabled: bool) -> None:
    """Turn tracebacks on for this process (and the workers it starts)."""
    if enabled:
        os.environ[DEBUG_ENV] = "1"


def debug_enabled() -> bool:
    """True when --debug (or $MIGRATION_DEBUG) asked for tracebacks."""
    return os.environ.get(DEBUG_ENV, "") not in ("", "0", "false")


def handle_errors(func: Callable[P, R]) -> Callable[P, R]:
    """Print a project error's message in red and exit with its code; a traceback only with --debug."""

    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return func(*args, **kwargs)
        except MigrationError as exc:
            if debug_enabled():
                raise
            # The message may hold brackets (engine logs, setting names) that rich would take for markup.
            err.print(f"[bold red]error:[/] {escape(str(exc))}", markup=True, highlight=False)
            raise typer.Exit(exc.exit_code) from None
        except KeyboardInterrupt:
            err.print("interrupted")
            raise typer.Exit(130) from None

    return wrapper


def print_json(data: Any) -> None:
    """Write ``data`` as JSON on stdout (plain, so scripts can parse it)."""
    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")
    sys.stdout.flush()

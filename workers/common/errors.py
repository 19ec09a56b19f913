"""The project's exception hierarchy: every error names the object at fault."""

from __future__ import annotations


class MigrationError(Exception):
    """Root of every error this project raises on purpose; the CLI prints it without a traceback."""

    exit_code: int = 1


class ConfigurationError(MigrationError):
    """An option, setting or input value is wrong; the message names it."""

    exit_code = 2

"""Errors of the local sandbox."""

from __future__ import annotations

from workers.common.errors import MigrationError


class SandboxError(MigrationError):
    """The sandbox could not fetch, install, start or stop a component."""


class DownloadError(SandboxError):
    """A Maven or PyPI download failed; the message names the coordinates and the cache path."""


class StartupError(SandboxError):
    """A component died or did not become ready; the message carries the last lines of its log."""

"""Errors of the metadata migration; each names the object or option at fault."""

from __future__ import annotations

from workers.common.errors import ConfigurationError, MigrationError


class MetadataError(MigrationError):
    """Reading or writing metadata failed; the message names the cluster, snapshot or object."""


class AllowListError(ConfigurationError):
    """An allow-list entry is not a name nor a valid ``regex:`` pattern; the message names the option and entry."""


class RenameRuleError(ConfigurationError):
    """A ``--rename`` rule is malformed; the message quotes it."""

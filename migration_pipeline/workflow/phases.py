"""The names a person gives a phase on the command line: a phase, a gate (an approval step), or one shard.

``all`` (or nothing) means every phase; ``shard_backfill[INDEX:SHARD]`` or plain ``INDEX:SHARD`` is one shard.
The phases and gates come from ``workflow_model.steps``, the one place they are declared.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from workers.common.errors import ConfigurationError
from workers.common.shard_key import ShardKey
from workflow_model.steps import PHASES, Step, gate

_BRACKETED = re.compile(rf"^{re.escape(Step.SHARD_BACKFILL.value)}\[(?P<key>.+)\]$")


@dataclass(frozen=True)
class PhaseRef:
    """A phase, or one shard of the backfill (``shard`` set, ``name`` is then ``shard_backfill``)."""

    name: str
    shard: str | None = None

    @property
    def label(self) -> str:
        """How ``workflow status`` and the logs name it."""
        return f"{Step.SHARD_BACKFILL}[{self.shard}]" if self.shard else self.name

    def step_matches(self, step_key: str | None) -> bool:
        """True for the phase's own step and its asset checks' steps (``<asset>_<check>``)."""
        return bool(step_key) and (step_key == self.name or str(step_key).startswith(self.name + "_"))


def valid_names() -> str:
    """Every accepted form, for error messages and help."""
    return ", ".join(["all", *PHASES]) + f", {Step.SHARD_BACKFILL}[INDEX:SHARD] or INDEX:SHARD"


def parse_phase(text: str | None, shard_keys: Iterable[str] | None = None) -> PhaseRef | None:
    """The phase ``text`` names (None for ``all``); a clear error (exit 2) for anything else.

    With ``shard_keys`` a shard must be one of them.
    """
    if text is None or text.strip() in ("", "all"):
        return None
    text = text.strip()
    if text in PHASES:
        return PhaseRef(text)
    bracketed = _BRACKETED.match(text)
    if bracketed:
        key = ShardKey.parse(bracketed.group("key")).format()  # a malformed key: its own error
    else:
        try:
            key = ShardKey.parse(text).format()
        except ConfigurationError:
            raise ConfigurationError(f"unknown phase {text!r}; phases: {valid_names()}") from None
    if shard_keys is not None:
        known = sorted(shard_keys)
        if key not in known:
            listed = ", ".join(known[:20]) + (" ..." if len(known) > 20 else "") if known else "none yet"
            raise ConfigurationError(f"unknown shard {key!r}; shards of the workflow: {listed}")
    return PhaseRef(Step.SHARD_BACKFILL.value, key)


def parse_gate(text: str) -> str:
    """A gate (approval step) name as ``workflow status`` prints it; a clear error (exit 2) otherwise."""
    return gate(text).name

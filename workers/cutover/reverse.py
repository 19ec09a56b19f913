"""The reverse replayer's options: the forward replayer's, pointed at the source, reading the reverse topic (what
clients sent to the target after the cutover), with the renames undone and Elasticsearch 5/6 types put back."""

from __future__ import annotations

from collections.abc import Sequence

from workers.capture.options import default_reverse_topic as reverse_topic_of
from workers.common.clusters import ClusterConnection
from workers.common.errors import ConfigurationError
from workers.replay.options import ReplayOptions
from workers.replay.transforms.renames import inverse_renames

DEFAULT_REVERSE_GROUP = "migration-reverse-replayer"
__all__ = ["DEFAULT_REVERSE_GROUP", "reverse_options", "reverse_topic_of"]


def reverse_options(forward: ReplayOptions, *, source: ClusterConnection, reverse_topic: str, group_id: str,
                    restore_types: dict[str, str], transforms: Sequence[str] = ()) -> ReplayOptions:
    """``forward``'s settings for the reverse direction: target ``source``, topic ``reverse_topic`` from its
    beginning, group ``group_id`` (one of its own: the forward group's commits are on another topic), inverse
    renames (ConfigurationError for a regex rule), ``restore_types`` (a source index's one mapping type; empty for
    an Elasticsearch 7+ source). The forward user transforms cannot be inverted: ``transforms`` replaces them.
    Tuples and the status file are the forward replayer's own and are not reused."""
    if forward.type_mode == "index-per-type":
        raise ConfigurationError("the forward replay splits types into indices (index-per-type): writes to the "
                                 "split indices cannot be merged back by the reverse replayer")
    if group_id == forward.group_id:
        raise ConfigurationError(f"the reverse replayer needs a group of its own, not {group_id!r}")
    if reverse_topic == forward.topic:
        raise ConfigurationError(f"the reverse topic must differ from the capture topic {forward.topic!r}")
    # Built anew rather than model_copy'd, so that the new values are validated like any others.
    return ReplayOptions(**{**dict(forward), **{
        "topic": reverse_topic, "group_id": group_id, "target": source, "from_timestamp_ms": None,
        "rename": inverse_renames(forward.rename), "type_mode": "restore" if restore_types else "drop",
        "split_types": {}, "restore_types": dict(restore_types), "transforms": list(transforms),
        "tuples": None, "status_file": None, "member": ""}})

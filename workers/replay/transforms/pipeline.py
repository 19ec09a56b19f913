"""The transform pipeline: the steps every captured request goes through before it is sent to the target.

Order, and why:

1. user transforms (``module:function``, as many as given, in order): they see the request as the client sent it
   to the source (source index names, Elasticsearch <= 6 types still in place), which is what they are written
   against: splitting a typed create-index by type, say, needs the types.
2. types: typed paths and bodies made typeless, types routed to split indices (index-per-type).
3. renames: after type routing, so a split index's name is renamed too (``TargetNames.name``: split, then rename).
   In type mode ``restore`` (the reverse replayer, after a cutover) the two swap: the inverse renames first, then
   the types put back, since ``restore_types`` names the source's indices (``restore_types.py``).
4. gzip (``gzip_target``): the body is to be sent compressed.
5. Host: the target's.
6. auth: the captured credentials dropped, the target's added. Last, because SigV4 signs the final request: its
   Host, path, query and the body as sent (compressed when step 4 asked for it).

A step may drop a request (return none) or fan it out; the following steps run on each request it returns. A step
that raises fails the whole captured request: the outcome has no requests, and its error names the step.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from workers.replay.messages import HttpRequest, TransformOutcome
from workers.replay.transforms.auth import AuthTransform
from workers.replay.transforms.base import Transform
from workers.replay.transforms.compression import GzipTransform
from workers.replay.transforms.host import HostTransform
from workers.replay.transforms.options import TransformOptions
from workers.replay.transforms.renames import RenameTransform
from workers.replay.transforms.restore_types import RestoreTypeTransform
from workers.replay.transforms.types import TypeTransform
from workers.replay.transforms.user import UserTransform

__all__ = ["TransformOptions", "TransformPipeline", "build_steps"]


def build_steps(options: TransformOptions, *, credentials: Any = None) -> list[Transform]:
    """The steps the options describe, in the order above (ConfigurationError for a user transform that cannot be
    loaded, or target credentials that cannot be read). ``credentials``: botocore credentials for SigV4 (default:
    boto3's chain)."""
    steps: list[Transform] = [UserTransform(path) for path in options.user_transforms]
    if options.type_mode == "restore":
        if options.rename:
            steps.append(RenameTransform(options.rename))
        steps.append(RestoreTypeTransform(options.restore_types))
    else:
        steps.append(TypeTransform(options.type_mode, options.split_types))
        if options.rename:
            steps.append(RenameTransform(options.rename))
    if options.gzip_target:
        steps.append(GzipTransform())
    steps += [HostTransform(options.target), AuthTransform(options.target, credentials)]
    return steps


class TransformPipeline:
    """Transforms run in order on each request: those the options describe, or the steps given."""

    def __init__(self, options: TransformOptions | None = None, *, credentials: Any = None,
                 steps: Sequence[Transform] | None = None) -> None:
        if steps is not None and options is None:
            self.transforms = list(steps)
        elif options is not None and steps is None:
            self.transforms = build_steps(options, credentials=credentials)
        else:
            raise TypeError("TransformPipeline takes options or steps (one of them)")

    @property
    def names(self) -> list[str]:
        """The steps' names, in order."""
        return [t.name for t in self.transforms]

    def apply(self, req: HttpRequest) -> TransformOutcome:
        """The requests to send for ``req`` (none when a step dropped it), or why none is sent."""
        requests = [req]
        for step in self.transforms:
            try:
                if len(requests) == 1:
                    requests = list(step.apply(requests[0]))
                else:
                    requests = [out for r in requests for out in step.apply(r)]
            except Exception as exc:
                return TransformOutcome(error=f"transform {step.name!r} failed: {type(exc).__name__}: {exc}")
            if not requests:
                break
        return TransformOutcome(requests)

"""A replayer process with its tuple writer and comparison wired in (the CLI's and the pods' entry point)."""

from __future__ import annotations

from typing import Any

from workers.replay.options import ReplayOptions
from workers.replay.replayer import TupleSink, run_replayer


def run_with_tuples(options: ReplayOptions) -> dict[str, Any]:
    """Run until stopped; tuples written where ``options.tuples`` says (every transaction is compared anyway)."""
    from workers.replay.compare import compare

    sink: TupleSink | None = None
    if options.tuples:
        from workers.replay.tuples import TupleWriter

        sink = TupleWriter(options.tuples, writer_id=options.member or None, s3_endpoint=options.s3_endpoint,
                           s3_region=options.s3_region)
    return run_replayer(options, tuples=sink, compare=compare)

"""The workflow's own bookkeeping around the backfill: registering the snapshot before it, cleaning up after it."""

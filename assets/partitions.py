"""The dynamic partitions of the backfill: one key ``index:shard`` per shard of the snapshot in scope."""

import dagster as dg

SHARDS = dg.DynamicPartitionsDefinition(name="shards")
GROUP = "migration"

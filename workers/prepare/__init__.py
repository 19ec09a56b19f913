"""The snapshot a migration reads, on the source's side: register the repository, take (or find) the snapshot,
count the source's documents and list the shards in the backfill's scope (their keys: ``workers.common.shard_key``).

Above ``workers.snapshot`` (the repository it lists) and ``workers.metadata`` (its allow lists); nothing below
imports it.
"""

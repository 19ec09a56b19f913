"""Validation: proves the target holds what the source held (content fingerprints, queries, metadata), no Dagster."""

"""The traffic replayer: captured transactions from Kafka, transformed, sent to the target, compared (no Dagster)."""

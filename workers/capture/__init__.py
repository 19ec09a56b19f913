"""The capture proxy: an HTTP/1.1 reverse proxy that records every transaction to Kafka (see docs/capture-format.md)."""

"""Cutover and back-out: client traffic moved between source and target through the capture proxies' switch, once
the replayers applied everything captured (docs/cutover.md)."""

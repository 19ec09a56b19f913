"""Snapshots: creating them through the source's API, and reading repositories without the source."""

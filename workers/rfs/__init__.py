"""Reindex-from-Snapshot: one shard's live documents from the snapshot into the target's ``_bulk`` API."""

"""Pieces shared by every worker: errors, HTTP/auth, allow lists, version parsing."""

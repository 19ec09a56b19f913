"""``workflow manage``: a terminal UI over the same driver as the ``workflow`` CLI."""

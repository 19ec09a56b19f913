"""Command-line interfaces: ``migration`` (umbrella), ``workflow`` and ``console``."""

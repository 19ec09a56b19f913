"""The data plane: plain Python that moves bytes. Imports nothing from Dagster but ``dagster_pipes``."""

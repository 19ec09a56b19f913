"""The migration assistant's Dagster code location, workflow configuration, CLIs and local sandbox."""

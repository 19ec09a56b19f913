"""The workflow file: its pydantic model, where the active one lives, and the commented sample."""

from migration_pipeline.config.model import WorkflowConfig
from migration_pipeline.config.store import active_config_path, load_active, load_file, save_active

__all__ = ["WorkflowConfig", "active_config_path", "load_active", "load_file", "save_active"]

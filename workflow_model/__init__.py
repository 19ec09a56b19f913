"""The workflow file: its pydantic model, where the active one lives, and the commented sample."""

from workflow_model.config import WorkflowConfig
from workflow_model.store import active_config_path, load_active, load_file, save_active

__all__ = ["WorkflowConfig", "active_config_path", "load_active", "load_file", "save_active"]

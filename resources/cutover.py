"""The cutover's connections from the workflow file: the proxies' admin clients, and what a switch records."""

# No "from __future__ import annotations": kept like the other Dagster-facing modules.
import os

import dagster as dg

from workers.cutover.admin_client import ProxyAdmin
from workers.cutover.sequence import SwitchResult
from workflow_model import WorkflowConfig


def proxy_admins(config: WorkflowConfig) -> list[ProxyAdmin]:
    """A client for each proxy's admin listener, with the token read from its variable."""
    cutover = config.cutover
    token = os.environ.get(cutover.admin_token_env, "")
    if not token:
        raise dg.Failure(f"cutover.admin_token_env: environment variable {cutover.admin_token_env} (the proxies' "
                         "admin token) is not set")
    verify: bool | str = False if cutover.admin_insecure else (cutover.admin_ca_file or True)
    return [ProxyAdmin(url, token, verify=verify) for url in cutover.proxy_admin_urls]


def switch_metadata(result: SwitchResult) -> dict[str, dg.MetadataValue]:
    """What a cutover or back-out records: the side reached and how long writes were held."""
    return {
        "side": dg.MetadataValue.text(result.to_side),
        "direction": dg.MetadataValue.text(result.direction),
        "hold_s": dg.MetadataValue.float(round(result.hold_s, 3)),
        "pause_s": dg.MetadataValue.float(round(result.pause_s, 3)),
        "drain_s": dg.MetadataValue.float(round(result.drain_s, 3)),
        "switch_s": dg.MetadataValue.float(round(result.switch_s, 3)),
        "drained_topic": dg.MetadataValue.text(result.topic),
        "drained_group": dg.MetadataValue.text(result.group),
        "watermarks": dg.MetadataValue.json({str(k): v for k, v in result.watermarks.items()}),
        "proxies": dg.MetadataValue.int(len(result.statuses)),
        "warnings": dg.MetadataValue.md("\n".join(f"- {w}" for w in result.warnings) or "none"),
    }

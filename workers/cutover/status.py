"""Where traffic goes and how far each replayer group is behind: the proxies' statuses and both groups' lag."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from workers.capture import topic_admin
from workers.common.errors import MigrationError
from workers.cutover.admin_client import ProxyAdmin, each


def combined_status(proxies: Sequence[ProxyAdmin], *, brokers: str | None, groups: dict[str, tuple[str, str]],
                    kafka_config: dict[str, Any] | None = None, timeout_s: float = 10.0) -> dict[str, Any]:
    """``{"side", "proxies": {url: status}, "replayers": {name: lag}}``. ``groups``: name (``forward``,
    ``reverse``) -> (topic, group). ``side`` is the proxies' common side, ``mixed`` when they disagree, ``unknown``
    when none answered. A proxy or group that cannot be read is reported with its error, not raised."""
    proxies_out: dict[str, Any] = {}
    for outcome in each(proxies, lambda p: p.status()):
        proxies_out[outcome.proxy.url] = outcome.answer if outcome.ok else {"error": str(outcome.error)}
    seen = {s.get("side") for s in proxies_out.values() if "error" not in s}
    side = seen.pop() if len(seen) == 1 else ("mixed" if seen else "unknown")
    replayers: dict[str, Any] = {}
    for name, (topic, group) in groups.items():
        if not brokers:
            replayers[name] = {"topic": topic, "group": group, "error": "no Kafka brokers given"}
            continue
        try:
            lag = topic_admin.consumer_lag(brokers, topic, group, kafka_config, timeout_s=timeout_s)
            replayers[name] = lag.to_dict()
        except MigrationError as exc:
            replayers[name] = {"topic": topic, "group": group, "error": str(exc)}
    return {"side": side, "proxies": proxies_out, "replayers": replayers}


def status_lines(status: dict[str, Any]) -> list[str]:
    """The combined status as text, one line per proxy and per group."""
    lines = [f"traffic goes to: {status['side']}"]
    for url, proxy in status["proxies"].items():
        if "error" in proxy:
            lines.append(f"  proxy {url}: {proxy['error']}")
            continue
        hold = f", paused ({proxy.get('held', 0)} held)" if proxy.get("paused") else ""
        abort = f", last abort: {proxy['last_abort']}" if proxy.get("last_abort") else ""
        lines.append(f"  proxy {url}: {proxy.get('side')}{hold}, switches {proxy.get('switches', 0)}{abort}")
    for name, lag in status["replayers"].items():
        if "error" in lag:
            lines.append(f"  {name} replayers ({lag['group']} on {lag['topic']}): {lag['error']}")
            continue
        time_lag = "" if lag.get("time_lag_s") is None else f", {lag['time_lag_s']:.1f}s"
        lines.append(f"  {name} replayers ({lag['group']} on {lag['topic']}, {lag['state']}): "
                     f"{lag['total_lag']} records behind{time_lag}")
    return lines

"""Cold and warm start of the default sandbox pair (Elasticsearch 7.10.2 + OpenSearch 2.19).

Cold: an empty cache folder, so every distribution, module and Maven plugin is downloaded.
Warm: the same cache, everything already there. Prints a table and writes bench/results/sandbox_start.json.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import tempfile
import time
from pathlib import Path

from migration_pipeline.sandbox import manager
from workflow_model.home import CACHE_ENV


def _machine() -> dict[str, object]:
    meminfo = Path("/proc/meminfo").read_text().splitlines()
    mem_kb = next(int(line.split()[1]) for line in meminfo if line.startswith("MemTotal"))
    return {"cpus": os.cpu_count(), "memory_gb": round(mem_kb / 1024 / 1024, 1), "python": platform.python_version()}


def _timed_up(name: str) -> float:
    began = time.monotonic()
    manager.up(manager.UpRequest(), name=name)
    elapsed = time.monotonic() - began
    manager.down(name)
    return elapsed


def main() -> None:
    # The cache must be reachable by the unprivileged engine user, so not under a private tmp folder.
    base = Path(os.environ.get("BENCH_CACHE_PARENT", "/var/tmp" if os.geteuid() == 0 else tempfile.gettempdir()))
    cache = Path(tempfile.mkdtemp(prefix="sandbox-bench-", dir=base))
    cache.chmod(0o755)
    os.environ[CACHE_ENV] = str(cache)
    try:
        cold = _timed_up("bench-cold")
        warm = _timed_up("bench-warm")
    finally:
        shutil.rmtree(cache, ignore_errors=True)
    results = {"machine": _machine(), "cold_start_s": round(cold, 1), "warm_start_s": round(warm, 1)}
    print(f"machine: {results['machine']}")
    print(f"{'default pair (ES 7.10.2 + OS 2.19)':40} {'seconds':>8}")
    print(f"{'cold start (empty cache, downloads)':40} {cold:8.1f}")
    print(f"{'warm start (cached)':40} {warm:8.1f}")
    out = Path(__file__).parent / "results"
    out.mkdir(exist_ok=True)
    (out / "sandbox_start.json").write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()

"""A container's process: started in its own session with its output piped into the log, stopped by process group.

A container is gone when its main process is, so whatever that process left running in its group is killed with it
(as a runtime's PID namespace would); that also closes the log pipe, which lets ``follow`` readers finish.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from migration_pipeline.sandbox.kubernetes.node_agent_logs import LogPump
from migration_pipeline.sandbox.processes import clean_child_signals

FOLLOW_GRACE_SECONDS = 2.0


def can_mount() -> bool:
    """Bind mounts in a private mount namespace need root and util-linux's unshare."""
    return os.geteuid() == 0 and shutil.which("unshare") is not None


def exit_code_of(returncode: int) -> int:
    """Popen reports a signal as -N; a container runtime reports 128+N (SIGTERM 143, SIGKILL 137)."""
    return 128 - returncode if returncode < 0 else returncode


@dataclass
class Launch:
    """Everything needed to start one container."""

    argv: list[str]
    env: dict[str, str]
    cwd: str


@dataclass
class Attempt:
    """One start of a container: its process (None if it could not start) and its log."""

    proc: subprocess.Popen[bytes] | None
    pump: LogPump | None
    log_path: Path
    exited_at: float | None = None
    reaped: bool = False

    def finished(self) -> bool:
        # a grandchild that left the process group may hold the pipe; do not keep a follower waiting on it for long
        if self.pump is None or self.pump.done.is_set():
            return True
        return self.exited_at is not None and time.monotonic() - self.exited_at > FOLLOW_GRACE_SECONDS


def spawn(launch: Launch, log_path: Path) -> Attempt:
    """Start the process with stdout and stderr in one pipe (their order kept) copied into ``log_path``."""
    Path(launch.cwd).mkdir(parents=True, exist_ok=True)
    read_fd, write_fd = os.pipe()
    try:
        proc = subprocess.Popen(launch.argv, stdin=subprocess.DEVNULL, stdout=write_fd, stderr=write_fd,
                                env=launch.env, cwd=launch.cwd, start_new_session=True, close_fds=True,
                                preexec_fn=clean_child_signals)
    except OSError:
        os.close(read_fd)
        raise
    finally:
        os.close(write_fd)
    return Attempt(proc, LogPump(read_fd, log_path), log_path)


def signal_group(pid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signum)


def terminate(procs: Sequence[subprocess.Popen[bytes]], grace: float) -> None:
    """SIGTERM each process group, SIGKILL the groups still running after ``grace`` seconds, and reap."""
    for proc in procs:
        signal_group(proc.pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while any(p.poll() is None for p in procs) and time.monotonic() < deadline:
        time.sleep(0.1)
    for proc in procs:
        if proc.poll() is None:
            signal_group(proc.pid, signal.SIGKILL)
        proc.wait()

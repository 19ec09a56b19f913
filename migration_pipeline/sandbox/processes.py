"""Start background processes in their own process group, and stop them by PID, never by name."""

from __future__ import annotations

import contextlib
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from migration_pipeline.sandbox.errors import SandboxError

ENGINE_USER = "migration-sandbox"


@dataclass(frozen=True)
class RunAs:
    """The account a process runs under; ``prefix`` switches to it when we are root."""

    uid: int
    gid: int
    prefix: tuple[str, ...] = ()


def engine_account() -> RunAs:
    """Elasticsearch and OpenSearch refuse to run as root: as root, use an unprivileged system user."""
    if os.geteuid() != 0:
        return RunAs(os.getuid(), os.getgid())
    try:
        entry = pwd.getpwnam(ENGINE_USER)
    except KeyError:
        useradd = shutil.which("useradd") or "/usr/sbin/useradd"
        proc = subprocess.run(
            [useradd, "--system", "--user-group", "--no-create-home", "--shell", "/usr/sbin/nologin", ENGINE_USER],
            capture_output=True, text=True,
        )
        if proc.returncode not in (0, 9):  # 9: created meanwhile by another sandbox
            raise SandboxError(f"could not create the system user {ENGINE_USER!r}: {proc.stderr.strip()}") from None
        entry = pwd.getpwnam(ENGINE_USER)
    setpriv = shutil.which("setpriv")
    if setpriv:
        prefix: tuple[str, ...] = (setpriv, f"--reuid={entry.pw_uid}", f"--regid={entry.pw_gid}", "--clear-groups")
    else:
        runuser = shutil.which("runuser") or "/sbin/runuser"
        prefix = (runuser, "-u", ENGINE_USER, "--")
    return RunAs(entry.pw_uid, entry.pw_gid, prefix)


def chown_tree(path: Path, account: RunAs) -> None:
    """Give ``path`` and everything below it to ``account`` (a no-op when we are that account)."""
    if os.geteuid() != 0 or account.uid == 0:
        return
    for p in [path, *path.rglob("*")]:
        os.lchown(p, account.uid, account.gid)


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


_RESET_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGQUIT, signal.SIGPIPE)


def clean_child_signals() -> None:
    """In a child before exec: no blocked signals and default dispositions. A blocked or ignored SIGTERM is
    inherited across exec from the starting thread (a library or a long test session may leave one), and the process
    could then only be killed after the stop timeout, never stopped gracefully."""
    signal.pthread_sigmask(signal.SIG_SETMASK, set())
    for signum in _RESET_SIGNALS:
        signal.signal(signum, signal.SIG_DFL)


def spawn(
    command: Sequence[str], *, env: Mapping[str, str], cwd: Path, log_file: Path, prefix: Sequence[str] = ()
) -> int:
    """Start ``command`` detached in a new session (its own process group) and return its PID."""
    with open(log_file, "ab") as log:
        proc = subprocess.Popen(
            [*prefix, *command],
            env=dict(env),
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=clean_child_signals,
        )
    _CHILDREN[proc.pid] = proc
    return proc.pid


# Children started by this process: polled so that a dead child is reaped rather than left a zombie
# that still answers kill(pid, 0).
_CHILDREN: dict[int, subprocess.Popen[bytes]] = {}


def is_alive(pid: int) -> bool:
    """True while the process exists and is not a zombie."""
    child = _CHILDREN.get(pid)
    if child is not None and child.poll() is not None:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True
    return state != "Z"


def stop_group(pid: int, timeout_s: float = 30.0) -> bool:
    """SIGTERM the process group led by ``pid``, SIGKILL it after ``timeout_s``; False if it was gone."""
    if not is_alive(pid):
        return False
    try:
        os.killpg(pid, signal.SIGTERM)
    except ProcessLookupError:
        return False
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not is_alive(pid):
            break
        time.sleep(0.2)
    else:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)
    # Whatever else is left in the group (e.g. the server JVM of Elasticsearch 8's launcher).
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL)
    child = _CHILDREN.pop(pid, None)
    if child is not None:
        child.wait(timeout=10)
    return True


_KEY_LINE = re.compile(r"ERROR|FATAL|Exception:|Caused by|unknown setting|error:", re.IGNORECASE)


def tail(path: Path, lines: int = 30) -> str:
    """The last ``lines`` lines of a text file ('' if it is missing), led by its last few error lines.

    A dying JVM ends its log with a stack trace; the line that says why comes before it.
    """
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - 64 * 1024))
            data = f.read().decode("utf-8", "replace")
    except OSError:
        return ""
    all_lines = data.splitlines()
    last = all_lines[-lines:]
    earlier = all_lines[:-lines] if len(all_lines) > lines else []
    key = [ln for ln in earlier if _KEY_LINE.search(ln)][-5:]
    return "\n".join([*key, *(["..."] if key else []), *last])


def runs_from(pid: int, marker: str) -> bool:
    """True when ``pid`` is alive and its command line mentions ``marker`` (guards against PID reuse)."""
    if not is_alive(pid):
        return False
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode("utf-8", "replace")
    except OSError:
        return False
    return marker in cmdline

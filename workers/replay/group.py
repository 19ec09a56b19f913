"""Replayers on this machine: a named group of detached ``python -m workers.replay`` processes sharing one Kafka
consumer group (Kafka spreads the topic's partitions over them).

Everything about a group lives in its state folder: ``group.json`` (the replayer flags its members run with and the
names of the environment variables they need), per member ``NAME.member.json`` (pid, command line, start time),
``NAME.status.json`` (written by the member every second) and ``NAME.log`` (its stdout and stderr). Secret values
are never written: passwords reach the members only through their environment, and the files hold the variables'
names. The members are their own sessions, so they outlive the command that started them and a Ctrl-C in its
terminal does not reach them; ``stop`` ends them gracefully (SIGTERM: finish in-flight work, commit, leave the group).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

from workers.capture.topic_admin import consumer_lag
from workers.common.errors import ConfigurationError, MigrationError
from workers.replay.stats import read_status

log = logging.getLogger(__name__)

# -P: the working directory is not put on sys.path, so a folder there named like a project package cannot shadow it.
REPLAYER_MODULE = ["-P", "-m", "workers.replay"]
# Flags the group sets itself for every member.
OWN_FLAGS = ("--group-id", "--member", "--status-file")
GROUP_FILE = "group.json"
MEMBER_SUFFIX = ".member.json"
LOG_TAIL_LINES = 20

# The members this process started: polling them reaps them, so a stopped member is not left a zombie (which
# /proc would still list) while this process lives on (tests, a long-running Dagster process).
_CHILDREN: dict[int, subprocess.Popen[bytes]] = {}


class ReplayerGroupError(MigrationError):
    """A replayer group could not be started, read or stopped; the message names the group and its state folder."""


@dataclass(frozen=True)
class Member:
    """One replayer process of the group, as recorded when it was started."""

    name: str
    pid: int
    started: float
    args: list[str]
    env_names: list[str]
    log: str
    status_file: str

    def to_dict(self) -> dict[str, Any]:
        """The member file's content."""
        return asdict(self)


@dataclass(frozen=True)
class MemberStatus:
    """A member now: whether its process runs, its last status file and (when it is dead) its log's last lines."""

    member: Member
    alive: bool
    status: dict[str, Any] | None
    log_tail: list[str] = field(default_factory=list)

    @property
    def stats(self) -> dict[str, Any]:
        """The counters of its last status (empty before the first one)."""
        return dict((self.status or {}).get("stats") or {})

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: the member's record, ``alive``, the status's age and content, the log tail."""
        return {**self.member.to_dict(), "alive": self.alive, "status_age_s": status_age(self.status),
                "status": self.status, "log_tail": self.log_tail}


def status_age(status: dict[str, Any] | None) -> float | None:
    """Seconds since a member's status file was written (None before its first one)."""
    written = (status or {}).get("time")
    return round(time.time() - written, 1) if isinstance(written, (int, float)) else None


@dataclass(frozen=True)
class Stopped:
    """What ``stop`` did to one member: ``stopped`` (it exited on SIGTERM), ``killed`` (it did not in time) or
    ``had died`` (it was not running when asked; its log's last lines say why)."""

    name: str
    pid: int
    outcome: Literal["stopped", "killed", "had died"]
    final: dict[str, Any] | None
    log_tail: list[str]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return asdict(self)


class CountedMember(Protocol):
    """What the group's totals read of a member (a local process's or a pod's)."""

    @property
    def alive(self) -> bool: ...

    @property
    def stats(self) -> dict[str, Any]: ...


def group_totals(members: Sequence[CountedMember], total_lag: int, time_lag_s: float | None) -> dict[str, Any]:
    """The group's counters and lag, as ``status`` reports them (what ``wait_for_catch_up`` reads)."""
    # Counters are per process since its start: a dead member's work happened too, its rate is over.
    return {
        "members": len(members), "alive": sum(m.alive for m in members),
        "transactions": sum(int(m.stats.get("transactions", 0)) for m in members),
        "documents": sum(int(m.stats.get("documents", 0)) for m in members),
        "documents_per_s": round(sum(float(m.stats.get("documents_per_s", 0)) for m in members if m.alive), 1),
        "dead_letters": sum(int(m.stats.get("dead_letters", 0)) for m in members),
        "total_lag": total_lag, "time_lag_s": time_lag_s,
    }


def _safe(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", text)[:48] or "host"


def proc_running(pid: int, marker: str) -> bool:
    """Whether ``pid`` is a live (not zombie) replayer whose command line holds ``marker`` (its status file path):
    a pid the system reused for another process is not taken for the member."""
    child = _CHILDREN.get(pid)
    if child is not None:
        # Started by this process and not reaped yet, so the pid is still its own (and right after the start its
        # command line can read empty: the parent of a vfork resumes before exec has set it up).
        if child.poll() is None:
            return True
        del _CHILDREN[pid]  # reaped (or reaped elsewhere: then /proc below still tells)
    proc = Path("/proc") / str(pid)
    if not Path("/proc/self").exists():  # no procfs (macOS): the pid alone
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True
    try:
        argv = (proc / "cmdline").read_bytes().split(b"\0")
        state = (proc / "stat").read_text().rpartition(")")[2].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X") and marker.encode() in argv and b"workers.replay" in argv


def log_tail(path: Path, lines: int = LOG_TAIL_LINES) -> list[str]:
    """The last ``lines`` lines of a member's log (empty when it cannot be read)."""
    try:
        with path.open("rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - 16384))
            text = f.read().decode("utf-8", "replace")
    except OSError:
        return []
    return text.splitlines()[-lines:]


def password_env_names(args: list[str], where: str) -> list[str]:
    """The names of the variables ``args`` take passwords from (``--…-password-env NAME``); an error naming
    ``where`` for a secret given as a value, which would end up in process lists, shell histories and files."""
    names: list[str] = []
    for i, arg in enumerate(args):
        flag, sep, value = arg.partition("=")
        if not flag.startswith("--"):
            continue
        if ("password" in flag or "secret" in flag) and not flag.endswith("-env"):
            raise ConfigurationError(f"{where}: {flag}: pass a secret as an environment variable's name "
                                     "(--…-password-env NAME), never as a value on a command line")
        if flag.endswith("-password-env"):
            name = value if sep else (args[i + 1] if i + 1 < len(args) else "")
            if not name:
                raise ConfigurationError(f"{where}: {flag} needs the variable's name")
            names.append(name)
    return names


def _check_args(args: list[str], where: str) -> list[str]:
    """``password_env_names``, after refusing the flags the group sets for each member."""
    for arg in args:
        flag = arg.partition("=")[0]
        if flag in OWN_FLAGS:
            raise ConfigurationError(f"{where}: {flag} is set by the group for each member; leave it out")
    return password_env_names(args, where)


class ReplayerGroup:
    """The replayer processes of consumer group ``group_id`` on this machine, kept in ``state_dir``."""

    def __init__(self, state_dir: Path, group_id: str) -> None:
        if not group_id:
            raise ConfigurationError("replayer group: the group id is empty")
        self.state_dir = Path(state_dir).resolve()
        self.group_id = group_id

    def __repr__(self) -> str:
        return f"ReplayerGroup({self.group_id!r} in {self.state_dir})"

    @property
    def where(self) -> str:
        """The group and its state folder, as error messages name them."""
        return f"replayer group {self.group_id!r} ({self.state_dir})"

    # -- files ---------------------------------------------------------------------------------------------------

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        """Two commands on the same group take turns (two `start`s must not both start the missing members)."""
        try:
            self.state_dir.mkdir(parents=True, exist_ok=True)
            lock = (self.state_dir / ".lock").open("w")
        except OSError as exc:
            raise ReplayerGroupError(f"{self.where}: cannot use the state folder: {exc}") from None
        with lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def _write_json(self, path: Path, data: dict[str, Any]) -> None:
        tmp = path.with_name(f".{path.name}.{os.getpid()}")
        try:
            tmp.write_text(json.dumps(data, indent=2) + "\n")
            tmp.replace(path)
        except OSError as exc:
            raise ReplayerGroupError(f"{self.where}: cannot write {path}: {exc}") from None

    def _read_json(self, path: Path) -> dict[str, Any]:
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise ReplayerGroupError(f"{self.where}: unreadable file {path}: {exc}; remove it if no replayer of "
                                     "the group runs") from None
        if not isinstance(data, dict):
            raise ReplayerGroupError(f"{self.where}: {path} does not hold a JSON object")
        return data

    def _recorded(self) -> list[Member]:
        """Every member file, oldest first."""
        if not self.state_dir.is_dir():
            return []
        found: list[Member] = []
        for path in self.state_dir.glob(f"*{MEMBER_SUFFIX}"):
            data = self._read_json(path)
            try:
                found.append(Member(**data))
            except TypeError as exc:
                raise ReplayerGroupError(f"{self.where}: {path} is not a member record: {exc}") from None
        return sorted(found, key=lambda m: (m.started, m.name))

    def _member_file(self, name: str) -> Path:
        return self.state_dir / f"{name}{MEMBER_SUFFIX}"

    def _alive(self, member: Member) -> bool:
        return proc_running(member.pid, member.status_file)

    def recorded_args(self) -> list[str] | None:
        """The replayer flags the group was started with (None: it was never started, or was stopped)."""
        path = self.state_dir / GROUP_FILE
        if not path.is_file():
            return None
        return list(self._read_json(path).get("args") or [])

    # -- operations ----------------------------------------------------------------------------------------------

    def start(self, replicas: int, args: list[str], env: dict[str, str] | None = None) -> list[Member]:
        """Run ``replicas`` members with the replayer flags ``args``: members already running are kept (asking for
        fewer than run changes nothing); dead ones are replaced. ``env`` is added to this process's environment
        for the new members (only the variables' names are recorded). Returns the running members."""
        if replicas < 1:
            raise ConfigurationError(f"{self.where}: --replicas must be 1 or more, not {replicas}")
        password_envs = _check_args(args, self.where)
        with self._locked():
            running = self._prune()
            recorded = self.recorded_args()
            if running and recorded is not None and recorded != list(args):
                raise ReplayerGroupError(
                    f"{self.where}: its {len(running)} running member(s) use other replayer flags "
                    f"({' '.join(recorded)}); stop the group first to change them")
            env_names = sorted({*(env or {}), *password_envs})
            self._check_env(env or {}, env_names)
            self._write_json(self.state_dir / GROUP_FILE, {"group_id": self.group_id, "args": list(args),
                                                           "env_names": env_names, "updated": time.time()})
            return running + self._spawn(replicas - len(running), list(args), env or {}, env_names)

    def scale(self, replicas: int, env: dict[str, str] | None = None, timeout_s: float = 30) -> list[Member]:
        """Run ``replicas`` members: start more with the group's recorded flags, or stop the newest ones (as
        ``stop`` does, each given ``timeout_s``)."""
        if replicas < 0:
            raise ConfigurationError(f"{self.where}: the number of replicas must be 0 or more, not {replicas}")
        with self._locked():
            running = self._prune()
            if replicas > len(running):
                args = self.recorded_args()
                if args is None:
                    raise ReplayerGroupError(f"{self.where}: never started here, so its replayer flags are unknown; "
                                             "start it first")
                names = self._read_json(self.state_dir / GROUP_FILE).get("env_names") or []
                return running + self._spawn(replicas - len(running), args, env or {}, list(names))
            if replicas < len(running):
                self._stop([m.name for m in running[replicas:]], timeout_s)
            return running[:replicas]

    def stop(self, timeout_s: float = 30) -> list[Stopped]:
        """Stop every member: SIGTERM, up to ``timeout_s`` for it to finish its work and commit, then SIGKILL.
        Members that had died are reported too. The group's records are removed (its logs stay)."""
        if not self.state_dir.is_dir():
            return []
        with self._locked():
            stopped = self._stop(None, timeout_s)
            if not self._recorded():
                (self.state_dir / GROUP_FILE).unlink(missing_ok=True)
            return stopped

    def members(self) -> list[MemberStatus]:
        """Every recorded member, oldest first: alive or not, its last status, its log's tail when it is dead."""
        out: list[MemberStatus] = []
        for member in self._recorded():
            alive = self._alive(member)
            out.append(MemberStatus(member, alive, read_status(member.status_file),
                                    [] if alive else log_tail(Path(member.log))))
        return out

    def status(self, brokers: str, topic: str, config: dict[str, Any] | None = None) -> dict[str, Any]:
        """The members and the consumer group's lag on ``topic`` (read from Kafka, never joining the group)."""
        members = self.members()
        lag = consumer_lag(brokers, topic, self.group_id, config)
        totals = group_totals(members, lag.total_lag, lag.time_lag_s)
        return {"group": self.group_id, "state_dir": str(self.state_dir), "topic": topic, "brokers": brokers,
                "members": [m.to_dict() for m in members], "lag": lag.to_dict(), "totals": totals}

    # -- internals (called with the lock held) -------------------------------------------------------------------

    def _prune(self) -> list[Member]:
        """The running members; records of dead ones are removed (their logs stay), with a warning."""
        running: list[Member] = []
        for member in self._recorded():
            if self._alive(member):
                running.append(member)
                continue
            log.warning("%s: member %s (pid %d) had died; its log: %s", self.where, member.name, member.pid,
                        member.log)
            self._member_file(member.name).unlink(missing_ok=True)
        return running

    def _free_names(self, count: int) -> list[str]:
        taken = {m.name for m in self._recorded()}
        prefix = _safe(socket.gethostname())
        names: list[str] = []
        i = 0
        while len(names) < count:
            name = f"{prefix}-{i}"
            if name not in taken:
                names.append(name)
            i += 1
        return names

    def _check_env(self, env: dict[str, str], env_names: list[str]) -> dict[str, str]:
        """The members' environment: this process's plus ``env``; an error naming any variable it lacks."""
        child_env = {**os.environ, **env}
        missing = [n for n in env_names if n not in child_env]
        if missing:
            raise ConfigurationError(f"{self.where}: the replayers need the environment variable(s) "
                                     f"{', '.join(missing)}, which are not set")
        return child_env

    def _spawn(self, count: int, args: list[str], env: dict[str, str], env_names: list[str]) -> list[Member]:
        child_env = self._check_env(env, env_names)
        started: list[Member] = []
        for name in self._free_names(count):
            status_file = self.state_dir / f"{name}.status.json"
            status_file.unlink(missing_ok=True)  # a previous member's: members() must not show it as this one's
            log_path = self.state_dir / f"{name}.log"
            argv = [sys.executable, *REPLAYER_MODULE, *args, "--group-id", self.group_id, "--member", name,
                    "--status-file", str(status_file)]
            try:
                with log_path.open("ab") as log_file:
                    log_file.write(f"--- {time.strftime('%Y-%m-%dT%H:%M:%S%z')} starting member {name} of "
                                   f"group {self.group_id}\n".encode())
                    log_file.flush()
                    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log_file, stderr=subprocess.STDOUT,
                                            env=child_env, start_new_session=True)
            except OSError as exc:
                raise ReplayerGroupError(f"{self.where}: cannot start member {name} ({argv[0]}): {exc}") from None
            _CHILDREN[proc.pid] = proc
            member = Member(name, proc.pid, time.time(), argv[1:], env_names, str(log_path), str(status_file))
            self._write_json(self._member_file(name), member.to_dict())
            log.info("%s: started member %s (pid %d)", self.where, name, proc.pid)
            started.append(member)
        return started

    def _stop(self, names: list[str] | None, timeout_s: float) -> list[Stopped]:
        chosen = [m for m in self._recorded() if names is None or m.name in names]
        report: dict[str, Stopped] = {}
        waiting: list[Member] = []
        for member in chosen:
            if not self._alive(member):
                report[member.name] = Stopped(member.name, member.pid, "had died", read_status(member.status_file),
                                              log_tail(Path(member.log)))
                continue
            with contextlib.suppress(ProcessLookupError):
                os.kill(member.pid, signal.SIGTERM)
            waiting.append(member)
        deadline = time.monotonic() + timeout_s
        while waiting and time.monotonic() < deadline:
            time.sleep(0.1)
            for member in [m for m in waiting if not self._alive(m)]:
                waiting.remove(member)
                report[member.name] = Stopped(member.name, member.pid, "stopped", read_status(member.status_file), [])
        for member in waiting:
            log.warning("%s: member %s (pid %d) still ran %gs after SIGTERM; killing it", self.where, member.name,
                        member.pid, timeout_s)
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(member.pid, signal.SIGKILL)  # its own session: anything it started goes too
            with contextlib.suppress(ProcessLookupError):
                os.kill(member.pid, signal.SIGKILL)
            end = time.monotonic() + 10
            while self._alive(member) and time.monotonic() < end:
                time.sleep(0.05)
            report[member.name] = Stopped(member.name, member.pid, "killed", read_status(member.status_file),
                                          log_tail(Path(member.log)))
        for member in chosen:
            if not self._alive(member):
                self._member_file(member.name).unlink(missing_ok=True)
        return [report[m.name] for m in chosen]

"""Build the control plane's binaries (etcd, kube-apiserver, kube-controller-manager, kube-scheduler) from the Go
module proxy, once, into the cache. No registry here ships them as binaries; Go builds them in ~12 min on 2 cores."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from migration_pipeline.sandbox.errors import SandboxError
from workflow_model.home import cache_root

KUBERNETES_VERSION = "v1.37.2"
STAGING_VERSION = "v0.37.2"  # every k8s.io staging module is tagged v0.<minor>.<patch> with the release
ETCD_VERSION = "v3.6.17"
KUBE_COMMANDS = ("kube-apiserver", "kube-controller-manager", "kube-scheduler")
BINARIES = ("etcd", *KUBE_COMMANDS)

Progress = Callable[[str], None]


@dataclass(frozen=True)
class ControlPlaneBinaries:
    """Where the built binaries are."""

    folder: Path

    def path(self, name: str) -> Path:
        return self.folder / name

    def complete(self) -> bool:
        return all(self.path(b).is_file() and os.access(self.path(b), os.X_OK) for b in BINARIES)


def bin_dir() -> Path:
    """One folder per pinned version set, so a version bump builds afresh next to the old ones."""
    return cache_root() / "kubernetes" / f"{KUBERNETES_VERSION}-etcd{ETCD_VERSION}" / "bin"


def go_binary() -> str:
    known = ("/usr/local/go/bin/go", "/usr/lib/go/bin/go")
    go = shutil.which("go") or next((p for p in known if os.access(p, os.X_OK)), None)
    if not go:
        raise SandboxError(
            "the sandbox's Kubernetes is built from source and needs Go (1.24 or newer) on PATH; "
            "install it (e.g. 'apt-get install golang-go', or https://go.dev/dl) and run the command again"
        )
    return go


def _go_env(work: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("HOME", str(Path.home()))
    env["CGO_ENABLED"] = "0"
    env["GOFLAGS"] = "-mod=mod"
    env.setdefault("GOTOOLCHAIN", "local")
    # Go refuses to start without a writable cache; keep it with the project's cache unless the user chose one.
    env.setdefault("GOCACHE", str(cache_root() / "kubernetes" / "go-build-cache"))
    env.setdefault("GOMODCACHE", str(cache_root() / "kubernetes" / "go-mod-cache"))
    env.setdefault("GOPATH", str(cache_root() / "kubernetes" / "gopath"))
    env["TMPDIR"] = str(work)
    return env


def _run(cmd: list[str], cwd: Path, env: dict[str, str], what: str) -> str:
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        tail = "\n".join((proc.stderr or proc.stdout).strip().splitlines()[-15:])
        raise SandboxError(f"building {what} failed ({' '.join(cmd[:3])} ...): exit {proc.returncode}\n{tail}")
    return proc.stdout


def _staging_modules(go: str, work: Path, env: dict[str, str]) -> list[str]:
    """The k8s.io modules k8s.io/kubernetes requires at v0.0.0 (its in-tree staging copies): each needs a
    ``replace`` to its published tag, or Go cannot resolve them."""
    out = _run([go, "mod", "download", "-json", f"k8s.io/kubernetes@{KUBERNETES_VERSION}"], work, env,
               "k8s.io/kubernetes (download)")
    gomod = Path(json.loads(out)["GoMod"]).read_text()
    return sorted(set(re.findall(r"^\s*(k8s\.io/[\w.-]+) v0\.0\.0\s*$", gomod, re.M)))


def _ldflags() -> str:
    pairs = [("gitVersion", KUBERNETES_VERSION), ("gitMajor", KUBERNETES_VERSION.split(".")[0].lstrip("v")),
             ("gitMinor", KUBERNETES_VERSION.split(".")[1]), ("gitTreeState", "clean")]
    flags = ["-s", "-w"]
    for pkg in ("k8s.io/component-base/version", "k8s.io/client-go/pkg/version"):
        flags += [f"-X {pkg}.{k}={v}" for k, v in pairs]
    return " ".join(flags)


def _build_etcd(go: str, work: Path, env: dict[str, str], out: Path) -> None:
    mod = work / "etcd"
    mod.mkdir()
    (mod / "go.mod").write_text(f"module sandbox/etcd\n\ngo 1.24\n\nrequire go.etcd.io/etcd/server/v3 {ETCD_VERSION}\n")
    (mod / "tools.go").write_text('//go:build tools\n\npackage tools\n\nimport _ "go.etcd.io/etcd/server/v3"\n')
    _run([go, "mod", "tidy"], mod, env, "etcd (go mod tidy)")
    _run([go, "build", "-trimpath", "-ldflags=-s -w", "-o", str(out / "etcd"), "go.etcd.io/etcd/server/v3"], mod, env,
         "etcd")


def _move_in(staged: Path, binaries: ControlPlaneBinaries) -> None:
    for built in staged.iterdir():
        built.replace(binaries.path(built.name))


def _build_kube(go: str, work: Path, env: dict[str, str], out: Path, progress: Progress,
                binaries: ControlPlaneBinaries) -> None:
    mod = work / "kube"
    mod.mkdir()
    staging = _staging_modules(go, mod, env)
    replaces = "\n".join(f"\t{m} => {m} {STAGING_VERSION}" for m in staging)
    (mod / "go.mod").write_text(f"module sandbox/kube\n\ngo 1.24\n\nrequire k8s.io/kubernetes {KUBERNETES_VERSION}\n"
                                f"\nreplace (\n{replaces}\n)\n")
    imports = "\n".join(f'\t_ "k8s.io/kubernetes/cmd/{c}"' for c in KUBE_COMMANDS)
    (mod / "tools.go").write_text(f"//go:build tools\n\npackage tools\n\nimport (\n{imports}\n)\n")
    _run([go, "mod", "tidy"], mod, env, "Kubernetes (go mod tidy)")
    for command in KUBE_COMMANDS:
        if binaries.path(command).is_file():
            continue
        started = time.monotonic()
        progress(f"kubernetes: building {command} {KUBERNETES_VERSION}")
        _run([go, "build", "-trimpath", f"-ldflags={_ldflags()}", "-o", str(out / command),
              f"k8s.io/kubernetes/cmd/{command}"], mod, env, command)
        _move_in(out, binaries)
        progress(f"kubernetes: {command} built in {time.monotonic() - started:.0f} s")


def ensure_binaries(progress: Progress = lambda _: None, *, keep_go_cache: bool = False) -> ControlPlaneBinaries:
    """The control plane's binaries, built now if the cache lacks them (a progress line per step)."""
    binaries = ControlPlaneBinaries(bin_dir())
    if binaries.complete():
        return binaries
    go = go_binary()
    binaries.folder.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    progress(f"kubernetes: building the control plane from source once ({KUBERNETES_VERSION}, etcd {ETCD_VERSION}; "
             "about 12 minutes on 2 cores, then cached in " + str(binaries.folder) + ")")
    with tempfile.TemporaryDirectory(prefix="kube-build-", dir=binaries.folder.parent) as tmp:
        work = Path(tmp)
        env = _go_env(work)
        staged = work / "out"
        staged.mkdir()
        # Each step moves in only whole binaries, so an interrupted build never leaves a truncated one in the cache
        # and a rerun builds only what is missing.
        if not binaries.path("etcd").is_file():
            progress(f"kubernetes: building etcd {ETCD_VERSION}")
            _build_etcd(go, work, env, staged)
            _move_in(staged, binaries)
        if not all(binaries.path(c).is_file() for c in KUBE_COMMANDS):
            _build_kube(go, work, env, staged, progress, binaries)
        if not keep_go_cache:
            # The build cache grows by ~6 GB and is of no use once the binaries exist.
            subprocess.run([go, "clean", "-cache"], env=env, capture_output=True)
    progress(f"kubernetes: control plane built in {time.monotonic() - started:.0f} s")
    return binaries

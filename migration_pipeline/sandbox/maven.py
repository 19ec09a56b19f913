"""Fetch artifacts from Maven Central with ``mvn`` into the sandbox's cache."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path
from xml.sax.saxutils import escape

from migration_pipeline.sandbox.catalog import MavenArtifact
from migration_pipeline.sandbox.errors import DownloadError
from migration_pipeline.sandbox.paths import downloads_dir

_MVN_TIMEOUT_S = 1800


def _mvn() -> str:
    mvn = shutil.which("mvn")
    if not mvn:
        raise DownloadError("Maven (mvn) is not on PATH; install it (Debian: apt-get install maven)")
    return mvn


def local_repository() -> Path:
    """Maven's local repository, inside the sandbox cache so that the cache is self-contained."""
    return downloads_dir() / "m2"


def _run_mvn(args: Sequence[str], what: str, destination: Path, cwd: Path | None = None) -> None:
    cmd = [_mvn(), "-B", "-q", f"-Dmaven.repo.local={local_repository()}", *args]
    try:
        proc = subprocess.run(
            cmd, cwd=cwd, capture_output=True, text=True, timeout=_MVN_TIMEOUT_S, stdin=subprocess.DEVNULL
        )
    except subprocess.TimeoutExpired:
        raise DownloadError(f"mvn timed out fetching {what} into {destination}") from None
    if proc.returncode != 0:
        lines = [ln for ln in (proc.stdout + proc.stderr).splitlines() if ln.strip()]
        errors = [ln for ln in lines if "ERROR" in ln][:6] or lines[-6:]
        detail = "\n  ".join(errors)
        raise DownloadError(f"could not fetch {what} from Maven Central into {destination}:\n  {detail}")


def fetch_artifact(artifact: MavenArtifact, destination: Path) -> Path:
    """Copy one artifact into ``destination`` (skipped when already there) and return its path."""
    target = destination / f"{artifact.artifact}-{artifact.version}.{artifact.packaging}"
    if target.is_file():
        return target
    destination.mkdir(parents=True, exist_ok=True)
    _run_mvn(
        [
            "org.apache.maven.plugins:maven-dependency-plugin:3.6.1:copy",
            f"-Dartifact={artifact.coordinates}",
            f"-DoutputDirectory={destination}",
        ],
        artifact.coordinates,
        destination,
    )
    if not target.is_file():
        raise DownloadError(f"mvn reported success but {target} is missing (artifact {artifact.coordinates})")
    return target


def _pom(artifacts: Sequence[MavenArtifact]) -> str:
    deps = "\n".join(
        "    <dependency>"
        f"<groupId>{escape(a.group)}</groupId><artifactId>{escape(a.artifact)}</artifactId>"
        f"<version>{escape(a.version)}</version>"
        "</dependency>"
        for a in artifacts
    )
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>local.migration.sandbox</groupId>
  <artifactId>fetch</artifactId>
  <version>1</version>
  <packaging>pom</packaging>
  <dependencies>
{deps}
  </dependencies>
</project>
"""


def fetch_with_dependencies(artifacts: Sequence[MavenArtifact], destination: Path) -> list[Path]:
    """Copy the artifacts and their runtime dependencies (transitively) into ``destination``."""
    what = ", ".join(a.coordinates for a in artifacts)
    destination.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".fetch-", dir=destination.parent))
    try:
        (staging / "pom.xml").write_text(_pom(artifacts))
        jars = staging / "jars"
        _run_mvn(
            [
                "org.apache.maven.plugins:maven-dependency-plugin:3.6.1:copy-dependencies",
                "-DincludeScope=runtime",
                f"-DoutputDirectory={jars}",
            ],
            what,
            destination,
            cwd=staging,
        )
        destination.mkdir(parents=True, exist_ok=True)
        copied = []
        for jar in sorted(jars.glob("*.jar")):
            copied.append(Path(shutil.copy2(jar, destination / jar.name)))
        return copied
    finally:
        shutil.rmtree(staging, ignore_errors=True)

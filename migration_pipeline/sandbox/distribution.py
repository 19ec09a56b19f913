"""Install an engine distribution into the cache and complete it with the modules real clusters have."""

from __future__ import annotations

import re
import shutil
import tempfile
import zipfile
from pathlib import Path

from migration_pipeline.sandbox.catalog import EngineRelease, ModuleSource
from migration_pipeline.sandbox.errors import SandboxError
from migration_pipeline.sandbox.maven import fetch_artifact, fetch_with_dependencies
from migration_pipeline.sandbox.paths import downloads_dir, ensure_dir

_INSTALLED_MARKER = ".sandbox-installed"
_JAR_NAME_RE = re.compile(r"^(?P<name>.+?)-\d[^/]*\.jar$")


def _jar_base(path: Path) -> str:
    m = _JAR_NAME_RE.match(path.name)
    return m.group("name") if m else path.stem


def _extract_zip(archive: Path, destination: Path) -> Path:
    """Unpack ``archive`` keeping the executable bits, and return its single top-level folder."""
    with zipfile.ZipFile(archive) as zf:
        for info in zf.infolist():
            extracted = Path(zf.extract(info, destination))
            mode = (info.external_attr >> 16) & 0o777
            if mode:
                extracted.chmod(mode | 0o444 | (0o111 if extracted.is_dir() else 0))
            elif extracted.is_dir():
                extracted.chmod(0o755)
    tops = [p for p in destination.iterdir() if p.is_dir()]
    if len(tops) != 1:
        raise SandboxError(f"{archive} does not hold exactly one top-level folder")
    return tops[0]


def _plugin_class(jar: Path) -> str:
    """The module's plugin class: the one top-level ``*Plugin`` class its jar holds."""
    with zipfile.ZipFile(jar) as zf:
        names = [n for n in zf.namelist() if n.endswith("Plugin.class") and "$" not in n]
    if len(names) != 1:
        raise SandboxError(f"cannot tell the plugin class of {jar.name}: candidates {names or 'none'}")
    return names[0][: -len(".class")].replace("/", ".")


def _descriptor(release: EngineRelease, module: ModuleSource, classname: str) -> str:
    version_key = "opensearch.version" if release.engine == "opensearch" else "elasticsearch.version"
    java_version = "11" if release.engine == "opensearch" else "1.8"
    return "\n".join(
        [
            f"description={module.name} module added by the migration sandbox",
            f"version={release.version}",
            f"name={module.name}",
            f"classname={classname}",
            f"java.version={java_version}",
            f"{version_key}={release.version}",
            f"extended.plugins={','.join(module.extends)}",
            "has.native.controller=false",
            "",
        ]
    )


def _add_module(home: Path, release: EngineRelease, module: ModuleSource) -> None:
    module_dir = home / module.folder / module.name
    if module_dir.exists():
        return  # the distribution already has it
    jars = fetch_with_dependencies([module.artifact], module_dir)
    # A jar that is also on the server's class path, or in a module this one extends, is "jar hell"
    # at start-up: keep only what the module alone brings.
    provided = {_jar_base(j) for j in (home / "lib").glob("*.jar")}
    for parent in module.extends:
        provided |= {_jar_base(j) for j in (home / "modules" / parent).glob("*.jar")}
    own_jar = f"{module.artifact.artifact}-{module.artifact.version}.jar"
    for jar in jars:
        if jar.name != own_jar and _jar_base(jar) in provided:
            jar.unlink()
    (module_dir / "plugin-descriptor.properties").write_text(
        _descriptor(release, module, _plugin_class(module_dir / own_jar))
    )
    if module.policy:
        (module_dir / "plugin-security.policy").write_text(module.policy)


def _order_by_extension(modules: tuple[ModuleSource, ...]) -> list[ModuleSource]:
    done: list[ModuleSource] = []
    pending = list(modules)
    while pending:
        ready = [m for m in pending if all(p in {d.name for d in done} for p in m.extends)]
        if not ready:
            raise SandboxError(f"module extension cycle among {[m.name for m in pending]}")
        done.extend(ready)
        pending = [m for m in pending if m not in ready]
    return done


def install(release: EngineRelease) -> Path:
    """Return the home folder of ``release``, downloading and assembling it on first use."""
    engines = ensure_dir(downloads_dir() / "engines")
    home = engines / f"{release.engine}-{release.version}"
    # The marker records what was assembled, so a change of the catalog's recipe reinstalls.
    recipe = repr(release) + "\n"
    marker = home / _INSTALLED_MARKER
    if marker.is_file() and marker.read_text() == recipe:
        return home
    archive = fetch_artifact(release.distribution, ensure_dir(downloads_dir() / "artifacts"))
    staging = Path(tempfile.mkdtemp(prefix=f".{home.name}-", dir=engines))
    try:
        unpacked = _extract_zip(archive, staging)
        for module in _order_by_extension(release.modules):
            _add_module(unpacked, release, module)
        for path in [unpacked, *unpacked.rglob("*")]:
            if not path.is_symlink():
                path.chmod(path.stat().st_mode | 0o444 | (0o111 if path.is_dir() else 0))
        (unpacked / _INSTALLED_MARKER).write_text(recipe)
        shutil.rmtree(home, ignore_errors=True)
        unpacked.rename(home)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return home


def installed_modules(home: Path) -> list[str]:
    """Names of the modules a distribution carries."""
    return _folders(home / "modules")


def installed_plugins(home: Path) -> list[str]:
    """Names of the plugins a distribution carries."""
    return _folders(home / "plugins")


def _folders(path: Path) -> list[str]:
    return sorted(p.name for p in path.iterdir() if p.is_dir()) if path.is_dir() else []

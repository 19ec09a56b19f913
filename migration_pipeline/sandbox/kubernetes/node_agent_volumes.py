"""A pod's volumes on this machine: where each one lives, what is written into it, and how containers see it.

``plan_volumes`` is pure (the API reads come in through ``Lookups``); ``materialize`` creates the folders and files.
A volume mounted somewhere other than its own folder is bind-mounted there in a private mount namespace
(``mount_wrapper``): that needs root and ``unshare``, both present in the sandbox.
"""

from __future__ import annotations

import os
import posixpath
import shlex
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from migration_pipeline.sandbox.kubernetes.node_agent_spec import (
    Doc,
    Lookups,
    ObjectLookup,
    PodSpecError,
    expand,
    field_value,
    missing,
)

DEFAULT_FILE_MODE = 0o644

# ---- planning ---------------------------------------------------------------------------------------------------

@dataclass
class PlannedVolume:
    """One volume as a folder (or file) on this machine, and what to put there before containers start."""

    name: str
    host_path: str
    create: str | None = None  # "dir" or "file": create if missing; None: must exist (hostPath with a type)
    files: dict[str, tuple[bytes, int]] = field(default_factory=dict)  # relative path -> (content, mode)
    owned: bool = False  # lives under the pod's folder and goes with the pod
    # kube-api-access: the API server adds it to every pod; no process here reads it from that path, so when it
    # cannot be mounted the container still runs.
    best_effort: bool = False
    unsupported: str | None = None  # the volume type, when this node cannot provide it


def _key_files(data: dict[str, bytes], items: list[Doc] | None, default_mode: int) -> dict[str, tuple[bytes, int]]:
    if not items:
        return {k: (v, default_mode) for k, v in data.items()}
    files: dict[str, tuple[bytes, int]] = {}
    for item in items:
        if item["key"] in data:
            files[item["path"]] = (data[item["key"]], item.get("mode", default_mode))
    return files


def _object_files(ref: Doc, name_key: str, kind: str, lookup: ObjectLookup, default_mode: int,
                  namespace: str) -> dict[str, tuple[bytes, int]]:
    name = ref[name_key]
    data = lookup(name)
    if data is None:
        if ref.get("optional"):
            return {}
        raise missing(f'{kind.lower()} "{name}" not found')
    for item in ref.get("items") or []:
        if item["key"] not in data and not ref.get("optional"):
            raise missing(f"couldn't find key {item['key']} in {kind} {namespace}/{name}")
    return _key_files(data, ref.get("items"), default_mode)


def _downward_files(items: list[Doc], pod: Doc, default_mode: int) -> dict[str, tuple[bytes, int]]:
    files: dict[str, tuple[bytes, int]] = {}
    for item in items:
        if "fieldRef" in item:
            files[item["path"]] = (field_value(pod, item["fieldRef"]["fieldPath"]).encode(),
                                   item.get("mode", default_mode))
    return files


def _projected_files(spec: Doc, pod: Doc, lookups: Lookups, default_mode: int) -> dict[str, tuple[bytes, int]]:
    files: dict[str, tuple[bytes, int]] = {}
    for source in spec.get("sources", []) or []:
        if "secret" in source:
            files |= _object_files(source["secret"], "name", "Secret", lookups.secret, default_mode,
                                   lookups.namespace)
        elif "configMap" in source:
            files |= _object_files(source["configMap"], "name", "ConfigMap", lookups.config_map, default_mode,
                                   lookups.namespace)
        elif "downwardAPI" in source:
            files |= _downward_files(source["downwardAPI"].get("items", []) or [], pod, default_mode)
        elif "serviceAccountToken" in source:
            token_spec = source["serviceAccountToken"]
            token = lookups.token(token_spec.get("audience"), int(token_spec.get("expirationSeconds", 3607)))
            if token is not None:
                files[token_spec["path"]] = (token.encode(), default_mode)
    return files


def plan_volume(volume: Doc, pod: Doc, pod_dir: str, lookups: Lookups) -> PlannedVolume:
    """Where ``volume`` lives on this machine and its content; raises PodSpecError when it cannot be had (yet)."""
    name = volume["name"]
    owned_dir = posixpath.join(pod_dir, "volumes", name)
    if "hostPath" in volume:
        spec = volume["hostPath"]
        kind = spec.get("type", "") or ""
        create = {"": "dir", "DirectoryOrCreate": "dir", "FileOrCreate": "file"}.get(kind)
        return PlannedVolume(name, spec["path"], create=create)
    if "emptyDir" in volume:
        return PlannedVolume(name, owned_dir, create="dir", owned=True)
    if "configMap" in volume:
        spec = volume["configMap"]
        mode = spec.get("defaultMode", DEFAULT_FILE_MODE)
        files = _object_files(spec, "name", "ConfigMap", lookups.config_map, mode, lookups.namespace)
        return PlannedVolume(name, owned_dir, create="dir", files=files, owned=True)
    if "secret" in volume:
        spec = volume["secret"]
        mode = spec.get("defaultMode", DEFAULT_FILE_MODE)
        files = _object_files(spec, "secretName", "Secret", lookups.secret, mode, lookups.namespace)
        return PlannedVolume(name, owned_dir, create="dir", files=files, owned=True)
    if "projected" in volume:
        spec = volume["projected"]
        files = _projected_files(spec, pod, lookups, spec.get("defaultMode", DEFAULT_FILE_MODE))
        return PlannedVolume(name, owned_dir, create="dir", files=files, owned=True,
                             best_effort=name.startswith("kube-api-access-"))
    if "downwardAPI" in volume:
        spec = volume["downwardAPI"]
        files = _downward_files(spec.get("items", []) or [], pod, spec.get("defaultMode", DEFAULT_FILE_MODE))
        return PlannedVolume(name, owned_dir, create="dir", files=files, owned=True)
    if "persistentVolumeClaim" in volume:
        return PlannedVolume(name, lookups.claim_path(volume["persistentVolumeClaim"]["claimName"]), create="dir")
    kinds = [k for k in volume if k != "name"]
    return PlannedVolume(name, owned_dir, unsupported=kinds[0] if kinds else "unknown")


def plan_volumes(pod: Doc, pod_dir: str, lookups: Lookups) -> dict[str, PlannedVolume]:
    return {v["name"]: plan_volume(v, pod, pod_dir, lookups) for v in pod["spec"].get("volumes", []) or []}


def pv_host_path(pv: Doc) -> str | None:
    """The folder a PersistentVolume stands for on this node (hostPath or local), if it is one."""
    spec = pv.get("spec", {})
    for key in ("hostPath", "local"):
        if key in spec:
            return str(spec[key]["path"])
    return None


# ---- mounts ----------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Mount:
    source: str
    target: str
    read_only: bool
    is_file: bool = False


def container_mounts(container: Doc, volumes: Mapping[str, PlannedVolume], env: Mapping[str, str],
                     *, can_mount: bool) -> list[Mount]:
    """The bind mounts the container needs, parents first; raises PodSpecError when one cannot be made here."""
    mounts: list[Mount] = []
    for vm in container.get("volumeMounts", []) or []:
        volume = volumes.get(vm["name"])
        if volume is None:
            raise PodSpecError("VolumeNotFound", f"volumeMount {vm['name']!r} names no volume of the pod", retry=False)
        if volume.unsupported:
            raise PodSpecError("UnsupportedVolume", f"volume {volume.name!r} is of type {volume.unsupported}, "
                               "which the sandbox node cannot provide", retry=False)
        sub = vm.get("subPath") or expand(vm.get("subPathExpr", "") or "", env)
        source = posixpath.normpath(posixpath.join(volume.host_path, sub)) if sub else volume.host_path
        target = posixpath.normpath(vm["mountPath"])
        if source == target:
            continue  # the volume already lives where the container looks for it
        if not can_mount:
            if volume.best_effort:
                continue
            raise PodSpecError(
                "VolumeMountUnavailable",
                f"volume {volume.name!r} is mounted at {target}, but this node cannot make mount namespaces (it needs "
                f"root and unshare): the volume can only be mounted at its own host path {source}",
                retry=False,
            )
        is_file = sub in volume.files or (bool(sub) and os.path.isfile(source))
        mounts.append(Mount(source, target, bool(vm.get("readOnly")), is_file))
    return sorted(mounts, key=lambda m: m.target.count("/"))


def mount_wrapper(argv: list[str], mounts: list[Mount], workdir: str) -> list[str]:
    """``argv`` run in a private mount namespace where each mount is bind-mounted (the pid stays the process's)."""
    if not mounts:
        return argv
    steps = ["set -e"]
    for m in mounts:
        source, target = shlex.quote(m.source), shlex.quote(m.target)
        if m.is_file:
            steps.append(f"mkdir -p {shlex.quote(posixpath.dirname(m.target))}; [ -e {target} ] || : > {target}")
        else:
            steps.append(f"mkdir -p {target}")
        steps.append(f"mount --bind {source} {target}")
        if m.read_only:
            steps.append(f"mount -o remount,bind,ro {target}")
    # cd again: the working directory may itself sit under a mount point
    steps.append(f"cd {shlex.quote(workdir)}")
    steps.append('exec "$@"')
    # unshare without --fork execs in place, so the pid we hold is the pod's process
    return ["unshare", "--mount", "--propagation", "private", "--", "/bin/sh", "-c", "; ".join(steps), "sh", *argv]



def materialize(volumes: dict[str, PlannedVolume]) -> None:
    """Create volume folders and write configMap/secret/projected files (refreshed on every start)."""
    for volume in volumes.values():
        if volume.unsupported:
            continue
        path = Path(volume.host_path)
        if volume.create == "dir":
            path.mkdir(parents=True, exist_ok=True)
        elif volume.create == "file" and not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.touch()
        elif volume.create is None and not path.exists():
            raise PodSpecError("ContainerCreating", f"hostPath {volume.host_path} of volume {volume.name!r} does not "
                               "exist", retry=True)
        for rel, (content, mode) in volume.files.items():
            target = path / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(content)
            target.chmod(mode)



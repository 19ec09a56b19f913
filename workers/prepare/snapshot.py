"""Get the snapshot a migration reads: register the repository, take (or find) the snapshot, list its shards."""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlparse

from opensearchpy import OpenSearch
from opensearchpy.exceptions import NotFoundError, TransportError

from workers.common.cluster_info import ServerVersion, server_version
from workers.common.errors import ConfigurationError
from workers.common.shard_key import ShardKey
from workers.metadata.allowlist import AllowList
from workers.replay.start_time import snapshot_start_ms
from workers.snapshot.blobstore import open_blob_store
from workers.snapshot.create import SnapshotError, create_snapshot, register_fs_repository
from workers.snapshot.repository import SnapshotRepository

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RepositorySpec:
    """A snapshot repository: its name on the source and where its files are (``file://`` or ``s3://``)."""

    name: str
    uri: str
    s3_region: str | None = None
    s3_endpoint: str | None = None
    s3_role_arn: str | None = None  # the IAM role the source assumes to write (Amazon OpenSearch Service)
    # Whether the region goes to the source too: only when the user chose it, so that a default region never
    # overrides the source's own s3.client.*.region (the workers' reader needs a region either way).
    send_region: bool = True

    @property
    def is_s3(self) -> bool:
        """True for an S3 repository."""
        return self.uri.startswith("s3://")


@dataclass
class PreparedSnapshot:
    """The snapshot in use, the shards in scope and the source's per-index counts when it was taken."""

    repository: RepositorySpec
    snapshot: str
    created: bool
    indices: dict[str, int] = field(default_factory=dict)  # index -> number of shards (indices in scope)
    source_counts: dict[str, int] = field(default_factory=dict)
    counts_taken: str = ""
    seconds: float = 0.0
    # The snapshot's UUID in the repository data: what the backfill's records are keyed by beyond the name (another
    # repository's snapshot, or one taken again after a deletion, can have the same name).
    snapshot_uuid: str = ""
    # True when this run registered a repository the source did not have: the cleanup deregisters only that one.
    registered_repository: bool = False
    # When the snapshot started on the source (ms since the epoch): where the replay of captured traffic starts.
    # None when the source would not say (the replay then needs its start time given).
    start_time_ms: int | None = None

    @property
    def shards(self) -> list[ShardKey]:
        """Every shard in scope, by index then shard number."""
        return [ShardKey(index, shard) for index, shards in sorted(self.indices.items()) for shard in range(shards)]

    @property
    def shard_keys(self) -> list[str]:
        """``index:shard`` for every shard in scope: the ``shards`` partition keys."""
        return [key.format() for key in self.shards]

    def to_dict(self) -> dict[str, Any]:
        """Plain values (the asset's value, read by the metadata and backfill steps)."""
        return {"repository": self.repository.name, "uri": self.repository.uri,
                "s3_region": self.repository.s3_region, "s3_endpoint": self.repository.s3_endpoint,
                "snapshot": self.snapshot, "snapshot_uuid": self.snapshot_uuid, "created": self.created,
                "indices": self.indices,
                "source_counts": self.source_counts, "counts_taken": self.counts_taken,
                "shard_keys": self.shard_keys, "seconds": round(self.seconds, 3),
                "registered_repository": self.registered_repository, "start_time_ms": self.start_time_ms}


def expand_name(template: str, now: datetime | None = None) -> str:
    """A snapshot name from its template: ``{timestamp}`` becomes the UTC time (snapshot names are lowercase)."""
    stamp = (now or datetime.now(UTC)).strftime("%Y%m%d-%H%M%S")
    return template.replace("{timestamp}", stamp).lower()


# The workflow key behind each S3 repository setting, named when the source refuses one.
_CONFIG_KEYS = {"bucket": "snapshot.repository.location", "base_path": "snapshot.repository.location",
                "region": "snapshot.repository.s3.region", "endpoint": "snapshot.repository.s3.endpoint",
                "protocol": "snapshot.repository.s3.endpoint", "path_style_access": "snapshot.repository.s3.endpoint",
                "role_arn": "snapshot.repository.s3.role_arn"}
_AWS_S3_HOST = re.compile(r"(^|\.)amazonaws\.com(\.cn)?$")
_RELEASE = re.compile(r"^(\d+)\.(\d+)")


@dataclass(frozen=True)
class S3RepositorySettings:
    """The settings of an ``s3`` repository for one source, and what was left out for that source (and why)."""

    settings: dict[str, str]
    left_out: dict[str, str] = field(default_factory=dict)


def _accepted_s3_settings(engine: str, number: str, *, role_arn: bool) -> tuple[set[str], dict[str, str]]:
    """The optional S3 repository settings ``engine`` ``number`` takes, and why it does not take the others.

    What repository-s3 reads from the repository's own settings (besides bucket and base_path), by release:

    - Elasticsearch 5.x: ``region``, ``endpoint``, ``protocol``, ``path_style_access`` are repository settings
      (deprecated in favour of the ``s3.client.*`` node settings).
    - Elasticsearch 6.x: none; the endpoint is an ``s3.client.NAME.*`` node setting only, and there is no region.
    - Elasticsearch 7.0+ (elastic/elasticsearch#37393): every non-secure client setting may be given on the
      repository, overriding the client's (S3ClientSettings.refine): ``endpoint`` and ``protocol``;
      ``path_style_access`` from 7.4 (#41966; 7.0-7.3 always use path style); ``region`` (the signing region) from
      7.7 (#52112). 8.x and 9.x keep this (documented as deprecated, still read).
    - OpenSearch 1.x-3.x (forked from 7.10.2): the same refine(): ``endpoint``, ``protocol``, ``path_style_access``,
      ``region`` (checked in the 3.8 plugin). Its own ``role_arn`` is a keystore client setting (IRSA), not a
      repository one.
    - ``role_arn`` is Amazon OpenSearch Service's: its domains (OpenSearch, Elasticsearch up to 7.10) require it on the
      repository, with ``region``, and pass the role to S3. Self-managed engines keep a repository setting they do not
      know without reading it, so with a role ARN both go to every source that may be such a domain; never to
      Elasticsearch 7.11+ (not offered there).
    """
    optional = {"region", "endpoint", "protocol", "path_style_access", "role_arn"}
    if engine == "opensearch":
        return optional, {}
    name = f"Elasticsearch {number}"
    m = _RELEASE.match(number)
    if m is None:
        return set(), {key: f"{name} is not a release this step knows" for key in optional}
    release = (int(m.group(1)), int(m.group(2)))
    if release[0] <= 5:
        return optional, {}
    accepted: set[str] = set()
    why: dict[str, str] = {}
    if release <= (7, 10):
        accepted.add("role_arn")
    else:
        why["role_arn"] = (f"only Amazon OpenSearch Service reads role_arn (it runs OpenSearch and Elasticsearch up to "
                           f"7.10); {name} takes its S3 credentials from its keystore or an instance role")
    for key in ("endpoint", "protocol"):
        if release >= (7, 0):
            accepted.add(key)
        else:
            why[key] = f"{name} reads it only from the s3.client.default.* settings of every node"
    if release >= (7, 4):
        accepted.add("path_style_access")
    elif release < (7, 0):  # 7.0-7.3 always use path style: nothing is lost
        why["path_style_access"] = f"{name} has no path_style_access setting (its SDK picks path style for IPs)"
    if release >= (7, 7) or (role_arn and release <= (7, 10)):
        accepted.add("region")
    else:
        why["region"] = f"{name} has no region setting (the endpoint decides the region)"
    return accepted, why


def s3_repository_settings(spec: RepositorySpec, source: ServerVersion) -> S3RepositorySettings:
    """What ``register_repository`` sends for an ``s3://`` repository to ``source``.

    The region, endpoint and role ARN go where the source reads them on the repository (see _accepted_s3_settings):
    there they take precedence over the source's own ``s3.client.default.*`` settings, so that the source writes to
    the same S3 the workers read from. An endpoint ``http(s)://host:port`` becomes ``endpoint: host:port`` and
    ``protocol`` (the form every release takes); a non-AWS endpoint also gets ``path_style_access: true``, as the
    workers' own S3 client uses for such endpoints (MinIO, moto).
    """
    parsed = urlparse(spec.uri)
    settings = {"bucket": parsed.netloc}
    if parsed.path.strip("/"):
        settings["base_path"] = parsed.path.strip("/")
    wanted: dict[str, str] = {}
    if spec.s3_region and (spec.send_region or spec.s3_role_arn):
        wanted["region"] = spec.s3_region
    if spec.s3_endpoint:
        text = spec.s3_endpoint.strip().rstrip("/")
        endpoint = urlparse(text if "://" in text else "//" + text)
        wanted["endpoint"] = endpoint.netloc
        if endpoint.scheme:
            wanted["protocol"] = endpoint.scheme.lower()
        if not _AWS_S3_HOST.search(endpoint.hostname or ""):
            wanted["path_style_access"] = "true"
    if spec.s3_role_arn:
        wanted["role_arn"] = spec.s3_role_arn
    accepted, why = _accepted_s3_settings(source.engine, source.number, role_arn="role_arn" in wanted)
    settings.update({key: value for key, value in wanted.items() if key in accepted})
    return S3RepositorySettings(settings, {key: why[key] for key in wanted if key not in accepted and key in why})


def _error_text(exc: TransportError) -> str:
    """The error's type and reason, with its causes (``exc.error`` alone is just the outer type)."""
    info = exc.info
    if isinstance(info, dict) and isinstance(info.get("error"), dict):
        parts: list[str] = []
        error = info["error"]
        while isinstance(error, dict) and len(parts) < 4:
            parts.append(f"{error.get('type', '')}: {error.get('reason', '')}".strip(": "))
            error = error.get("caused_by")
        return "; caused by ".join(p for p in parts if p) or str(exc.error)
    if isinstance(info, (dict, list)):
        return json.dumps(info)[:500]
    return f"{exc.error} {info if isinstance(info, str) else ''}".strip()[:500]


# Errors that point at a setting without naming it: the SDK's and the plugin's own words.
_FAULT_PATTERNS = (
    (re.compile(r"No enum constant \S*Protocol\.|unknown protocol", re.I), "protocol"),
    (re.compile(r"Unable to load region|invalid region|AuthorizationHeaderMalformed|region '?[\w-]+'? is wrong",
                re.I), "region"),
    (re.compile(r"UnknownHost|Connection refused|Connect to \S+ failed|Unable to execute HTTP request", re.I),
     "endpoint"),
)


def _setting_at_fault(text: str, sent: dict[str, str]) -> str | None:
    """The sent setting the error names (``[region]``, or ``[s3.client.NAME.region]`` from a client override), or
    the one its wording points at; None when it points at none that was sent."""
    for match in re.finditer(r"\[(?:s3\.client\.[^.\]\s]+\.)?([a-z_]+)\]", text):
        if match.group(1) in sent:
            return match.group(1)
    return next((key for pattern, key in _FAULT_PATTERNS if key in sent and pattern.search(text)), None)


def _refusal(spec: RepositorySpec, built: S3RepositorySettings, exc: TransportError) -> str:
    """Why the source refused the repository and what to do, naming the setting at fault when the error does."""
    text = _error_text(exc)
    sent = built.settings
    key = _setting_at_fault(text, sent)
    if key is not None:
        todo = f"check {_CONFIG_KEYS[key]} (sent as the repository setting {key}={sent[key]!r})"
    elif re.search(r"type \[s3\] (does not exist|is not registered)|unknown \[?repository\]? type", text, re.I):
        todo = "install the repository-s3 plugin on every source node and restart them"
    elif "role_arn" in sent and re.search(r"PassRole|assume ?role|role_arn|not authorized", text, re.I):
        todo = (f"the request registering the repository must come from an identity allowed iam:PassRole on "
                f"{sent['role_arn']} (snapshot.repository.s3.role_arn), that role must trust the OpenSearch Service "
                "and may write to the bucket; with fine-grained access control map that identity to manage_snapshots")
    else:
        todo = ("the source needs S3 credentials (its keystore's s3.client.default.access_key/secret_key, an instance "
                "role, or role_arn on Amazon OpenSearch Service) and must reach the bucket; or take the snapshot to a "
                "filesystem repository, copy it to S3 and reference it with snapshot.existing")
    left = "".join(f"; not sent: {k} ({why})" for k, why in built.left_out.items())
    return (f"source refused S3 repository {spec.name!r} at {spec.uri}: {text}. What to do: {todo}. "
            f"Settings sent: {json.dumps(sent, sort_keys=True)}{left}")


def register_repository(client: OpenSearch, spec: RepositorySpec, source: ServerVersion | None = None) -> None:
    """Register the repository on the source (filesystem, or S3 through the source's repository-s3 plugin).

    For S3 the settings depend on the source's engine and release (``source``; asked from the cluster when not
    given): see s3_repository_settings. Settings this source does not take are logged, not sent.
    """
    if not spec.is_s3:
        register_fs_repository(client, spec.name, urlparse(spec.uri).path)
        return
    if source is None:
        try:
            source = server_version(client)
        except TransportError as exc:  # connection errors included
            raise SnapshotError(f"cannot register S3 repository {spec.name!r}: the source's version, which decides "
                                f"the repository settings it takes, could not be read: {exc}") from None
    built = s3_repository_settings(spec, source)
    for key, why in built.left_out.items():
        log.warning("S3 repository %r: %s not sent to the source (%s)", spec.name, _CONFIG_KEYS[key], why)
    try:
        client.snapshot.create_repository(repository=spec.name, body={"type": "s3", "settings": built.settings})
    except TransportError as exc:
        raise SnapshotError(_refusal(spec, built, exc)) from None


def count_documents(client: OpenSearch, indices: Iterable[str]) -> dict[str, int]:
    """Top-level documents per index (nested children are not counted), after a refresh."""
    names = list(indices)
    if not names:
        return {}
    joined = ",".join(names)
    client.indices.refresh(index=joined, params={"ignore_unavailable": "true"})
    return {name: int(client.count(index=name)["count"]) for name in names}


def in_scope(indices: Iterable[str], allowlist: Iterable[str]) -> list[str]:
    """Indices of the snapshot the backfill moves: the allow list's, else every index not starting with '.'."""
    allow = AllowList.parse(allowlist, "backfill index allow list")
    return sorted(i for i in indices if (allow.matches(i) if not allow.empty else not i.startswith(".")))


def repository_exists(client: OpenSearch, name: str) -> bool:
    """Whether the source has a repository registered under ``name``."""
    try:
        client.snapshot.get_repository(repository=name)
    except NotFoundError:
        return False
    return True


def prepare(client: OpenSearch, spec: RepositorySpec, *, create: str | None, existing: str | None,
            index_expression: list[str], include_global_state: bool, backfill_allowlist: list[str],
            progress: Callable[[int, int], None] | None = None) -> PreparedSnapshot:
    """Take the snapshot ``create`` (or find ``existing``), and list its shards in the backfill's scope."""
    began = time.monotonic()
    if bool(create) == bool(existing):
        raise ConfigurationError("snapshot: set exactly one of 'create' or 'existing'")
    registered = False
    if create:
        registered = not repository_exists(client, spec.name)
        register_repository(client, spec)
        name = expand_name(create)
        expression = ",".join(index_expression) or "*"
        # Counted just before the snapshot starts: with writes paused (or captured for replay) these are its counts.
        resolved = client.indices.get(index=expression, params={"expand_wildcards": "open"})
        counts = count_documents(client, resolved.keys())
        create_snapshot(client, spec.name, name, indices=expression, include_global_state=include_global_state,
                        progress=progress)
        counts_taken = "source _count just before the snapshot started"
    else:
        name = existing or ""
        counts = {}
        counts_taken = ""
    repo = SnapshotRepository(open_blob_store(spec.uri, s3_endpoint=spec.s3_endpoint, s3_region=spec.s3_region))
    names = [ref.name for ref in repo.indices(name)]
    scope = in_scope(names, backfill_allowlist)
    shards = {index: repo.index_metadata(name, index).number_of_shards for index in scope}
    if existing:
        # The source may have moved on since an existing snapshot was taken; its counts now are the best hint.
        try:
            counts = count_documents(client, [i for i in scope if client.indices.exists(index=i)])
            counts_taken = "source _count when the snapshot was referenced (may differ from the snapshot)"
        except TransportError:
            counts, counts_taken = {}, "source unreachable: no counts"
    return PreparedSnapshot(spec, name, bool(create), shards, {i: counts[i] for i in scope if i in counts},
                            counts_taken, time.monotonic() - began, snapshot_uuid=repo.snapshot(name).uuid,
                            registered_repository=registered, start_time_ms=start_time(client, spec.name, name))


def start_time(client: OpenSearch, repository: str, snapshot: str) -> int | None:
    """The snapshot's start time from the source's snapshot API; None (logged) when the source cannot tell: the
    backfill does not need it, only the replay's start does, and that can be given by hand."""
    try:
        return snapshot_start_ms(client, repository, snapshot)
    except Exception as exc:  # whatever the source answers (or not), the snapshot itself is fine
        log.warning("snapshot %s/%s: its start time could not be read from the source (%s); the replay's start "
                    "must be given by hand", repository, snapshot, exc)
        return None

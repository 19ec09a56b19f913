"""The fallback for settings no rule knows: the target's own words name what to drop."""

from __future__ import annotations

from workers.metadata.unknown_settings import drop_named, named_settings

# Answers of real targets: OpenSearch 2.19 (simulate, wrapped), 3.8 (create), and a removed setting.
OS219 = ("invalid_index_template_exception: index_template [simulate_template_x] invalid, cause [Validation Failed: "
         "1: unknown setting [index.foo.bar] please check that any required plugins are installed, or check the "
         "breaking changes documentation for removed settings;2: expected [index.foo.bar] to be private but it was "
         "not;]")
OS38 = "settings_exception: unknown setting [index.fast_refresh] please check that any required plugins are installed"
PRIVATE = "validation_exception: Validation Failed: 1: private index setting [index.source_only] can not be set " \
          "explicitly;"
REMOVED = "illegal_argument_exception: Setting index.mapper.dynamic was removed after version 6.0.0"


def test_names_in_every_wording() -> None:
    assert named_settings(OS219) == [("index.foo.bar", "unknown")]
    assert named_settings(OS38) == [("index.fast_refresh", "unknown")]
    assert named_settings(PRIVATE) == [("index.source_only", "private")]
    assert named_settings(REMOVED) == [("index.mapper.dynamic", "removed")]
    assert named_settings("mapper_parsing_exception: No handler for type [flattened]") == []


def test_drop_keeps_the_rest_and_plugin_settings_the_user_must_install() -> None:
    settings = {"index.foo.bar": "1", "index.number_of_shards": "1"}
    assert drop_named(settings, OS219) == {"index.foo.bar": ("1", "unknown")}
    assert settings == {"index.number_of_shards": "1"}
    knn = {"index.knn": "true"}
    assert drop_named(knn, "settings_exception: unknown setting [index.knn] please check") == {}
    assert knn == {"index.knn": "true"}
    # A name the target gives without the index. prefix (archived.*) is found under it.
    archived = {"index.archived.x": "1"}
    assert drop_named(archived, "unknown setting [archived.x]") == {"index.archived.x": ("1", "unknown")}

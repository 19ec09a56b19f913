"""Parsing and applying rename rules."""

from __future__ import annotations

import pytest

from workers.metadata.errors import RenameRuleError
from workers.metadata.rename import RenameRules


def test_exact_and_regex_rules_first_match_wins() -> None:
    rules = RenameRules.parse(["logs=logs-old", "regex:logs-(.*)=archive-$1", "regex:(.*)-(\\d+)=\\2-\\1"])
    assert rules.apply("logs") == "logs-old"
    assert rules.apply("logs-2024") == "archive-2024"
    assert rules.apply("metrics-7") == "7-metrics"
    assert rules.apply("other") == "other"


def test_patterns_may_contain_equals_signs() -> None:
    assert RenameRules.parse(["regex:a(?=b)b=x"]).apply("ab") == "x"


@pytest.mark.parametrize(("rule", "message"), [
    ("no-separator", "must be OLD=NEW"),
    ("regex:(=x", "not a valid regular expression"),
    ("regex:a(.)=b$2", "uses group 2, which the pattern does not have"),
    ("regex:=x", "empty pattern"),
])
def test_bad_rules_are_quoted(rule: str, message: str) -> None:
    with pytest.raises(RenameRuleError, match=message):
        RenameRules.parse([rule])

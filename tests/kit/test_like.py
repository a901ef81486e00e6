"""SQL LIKE as the kit reads it: % and _ are the only wildcards, everything else is itself."""

from __future__ import annotations

import pytest

from shipyard.kit.like import like_pattern


@pytest.mark.parametrize(("pattern", "text", "matches"), [
    ("churn%", "churn-model", True),
    ("churn%", "my-churn", False),
    ("%model", "churn\nmodel", True),
    ("c_urn", "churn", True),
    ("c_urn", "chhurn", False),
    ("a.b", "axb", False),          # regex characters are themselves
    ("a*[b]?", "a*[b]?", True),     # and so are glob characters
    ("a*", "abc", False),
    ("", "", True),
])
def test_only_percent_and_underscore_are_wildcards(pattern: str, text: str, matches: bool) -> None:
    assert (like_pattern(pattern).fullmatch(text) is not None) == matches


def test_ilike_ignores_case_and_like_does_not() -> None:
    assert like_pattern("CHURN%", ignore_case=True).fullmatch("churn-1")
    assert not like_pattern("CHURN%").fullmatch("churn-1")

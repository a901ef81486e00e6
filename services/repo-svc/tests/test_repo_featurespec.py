"""Feature specifications: what a valid one looks like, and clear errors otherwise."""

from __future__ import annotations

import pytest
from shipyard_repo.domain.featurespec import Feature, parse_spec

from shipyard.kit.errors import InvalidArgument

GOOD = """
features:
  - {name: age, type: int64}
  - {name: height, type: float64, selected: false}
  - {name: weight, type: float64, selected: false}
  - {name: bmi, type: float64, derived: "weight / height ** 2", description: Body mass index}
"""


def test_a_specification_with_selected_and_derived_features() -> None:
    features = parse_spec(GOOD)
    assert features[0] == Feature("age", "int64")
    assert features[3] == Feature("bmi", "float64", True, "Body mass index", "weight / height ** 2")
    assert [f.name for f in features if f.selected] == ["age", "bmi"]


@pytest.mark.parametrize(
    ("text", "field", "problem"),
    [
        ("features: [", "spec_yaml", "not valid YAML"),
        ("- a\n- b", "spec_yaml", "non-empty list 'features'"),
        ("features: []", "spec_yaml", "non-empty list 'features'"),
        ("features: [{name: a, type: complex}]", "features[0].type", "must be one of"),
        ("features: [{name: a/b, type: bool}]", "features[0].name", "'/'"),
        ("features: [{name: a, type: bool}, {name: a, type: int32}]", "features[1].name", "appears twice"),
        ("features: [{name: a, type: bool, selected: maybe}]", "features[0].selected", "true or false"),
        ("features: [{name: a, type: bool, colour: red}]", "features[0]", "unknown field 'colour'"),
        ("features: [{name: a, type: bool, selected: false}]", "features", "at least one"),
        ("features: [7]", "features[0]", "mapping"),
    ],
)
def test_bad_specifications_name_the_problem(text: str, field: str, problem: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        parse_spec(text)
    assert caught.value.field == field and problem in caught.value.problem

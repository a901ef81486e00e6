"""Feature specifications: which features a feature set holds, their types, which are selected
for training, and which are derived from others (an expression a preprocessing run evaluates)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import yaml

from shipyard.kit.errors import InvalidArgument

from .names import check_name, check_text

SPEC_MAX = 1 << 20
FEATURES_MAX = 10_000
TYPES = ("bool", "int32", "int64", "float32", "float64", "string", "bytes", "timestamp", "category")
FILE_NAME = "featurespec.yaml"


@dataclass(frozen=True)
class Feature:
    """One feature of a feature set."""

    name: str
    type: str
    selected: bool = True
    description: str = ""
    derived: str = ""


def parse_spec(text: str) -> tuple[Feature, ...]:
    """The features of a YAML feature specification, or InvalidArgument naming what is wrong."""
    if len(text.encode()) > SPEC_MAX:
        raise InvalidArgument("spec_yaml", f"must be at most {SPEC_MAX >> 20} MiB")
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise InvalidArgument("spec_yaml", f"is not valid YAML: {exc}") from None
    items = data.get("features") if isinstance(data, dict) else None
    if not isinstance(items, list) or not items:
        raise InvalidArgument("spec_yaml", "must be a mapping with a non-empty list 'features'")
    if len(items) > FEATURES_MAX:
        raise InvalidArgument("spec_yaml", f"at most {FEATURES_MAX:,} features")
    features = tuple(_feature(index, item) for index, item in enumerate(items))
    seen: set[str] = set()
    for index, feature in enumerate(features):
        if feature.name in seen:
            raise InvalidArgument(f"features[{index}].name", f"{feature.name!r} appears twice")
        seen.add(feature.name)
    if not any(f.selected for f in features):
        raise InvalidArgument("features", "select at least one feature for training")
    return features


def _feature(index: int, item: Any) -> Feature:
    where = f"features[{index}]"
    if not isinstance(item, dict):
        raise InvalidArgument(where, "must be a mapping with name and type")
    unknown = set(item) - {"name", "type", "selected", "description", "derived"}
    if unknown:
        raise InvalidArgument(where, f"unknown field {sorted(unknown)[0]!r}")
    name, kind = str(item.get("name", "")), str(item.get("type", ""))
    check_name(f"{where}.name", name)
    if kind not in TYPES:
        raise InvalidArgument(f"{where}.type", f"must be one of {', '.join(TYPES)} (got {kind!r})")
    selected = item.get("selected", True)
    if not isinstance(selected, bool):
        raise InvalidArgument(f"{where}.selected", "must be true or false")
    description = check_text(f"{where}.description", str(item.get("description", "")), 4096)
    derived = check_text(f"{where}.derived", str(item.get("derived", "")), 4096, multiline=False)
    return Feature(name, kind, selected, description, derived)

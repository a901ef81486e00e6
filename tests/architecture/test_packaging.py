"""pyproject.toml's license is PEP 639 metadata (setuptools warns of the old table form and will
refuse it), and the build backend is new enough to read it."""

from __future__ import annotations

import tomllib
from pathlib import Path

from packaging.licenses import canonicalize_license_expression
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[2]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())


def test_the_license_is_an_spdx_expression_with_its_file() -> None:
    project = PYPROJECT["project"]
    assert isinstance(project["license"], str), "a TOML table is deprecated: use an SPDX string"
    assert canonicalize_license_expression(project["license"]) == "Apache-2.0"
    patterns = project["license-files"]
    assert patterns and all(list(ROOT.glob(pattern)) for pattern in patterns), "every license file exists"
    classifiers = project.get("classifiers", [])
    assert not any("License ::" in c for c in classifiers), "PEP 639: no license classifiers"


def test_the_build_backend_reads_pep_639_license_metadata() -> None:
    [setuptools] = [Requirement(r) for r in PYPROJECT["build-system"]["requires"]
                    if Requirement(r).name == "setuptools"]
    assert not setuptools.specifier.contains("76.9") and setuptools.specifier.contains("77.0"), (
        "setuptools 77 is the first to read an SPDX `license` and `license-files`")

"""``shipyard demo`` where scikit-learn (the examples extra) is not installed: the platform's core runs
without it, and the demo says what to install before it starts anything."""

from __future__ import annotations

import importlib.util
from importlib.machinery import ModuleSpec

import pytest
from typer.testing import CliRunner

from shipyard.cli import demo
from shipyard.cli.main import app


def test_the_demo_without_scikit_learn_names_the_extra_and_starts_nothing(
        monkeypatch: pytest.MonkeyPatch) -> None:
    find_spec = importlib.util.find_spec

    def without_sklearn(name: str, package: str | None = None) -> ModuleSpec | None:
        return None if name == "sklearn" else find_spec(name, package)

    def no_client() -> None:
        raise AssertionError("the demo reached the platform before saying what it lacks")

    monkeypatch.setattr(demo.importlib.util, "find_spec", without_sklearn)
    monkeypatch.setattr(demo, "client", no_client)
    result = CliRunner().invoke(app, ["demo"])
    assert result.exit_code == 1, result.output
    assert "scikit-learn" in result.output and "shipyard[examples]" in result.output

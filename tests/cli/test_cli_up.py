"""``shipyard up``: what it tells the operator about isolating runs, and single-user mode."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from shipyard.cli import main, stack
from shipyard.kit import bubblewrap
from shipyard.local.supervisor import StackConfig

MISSING = "bubblewrap is not installed (apt-get install bubblewrap)"


@pytest.fixture
def started(monkeypatch: pytest.MonkeyPatch) -> list[StackConfig]:
    """The stack configs ``up`` would start (nothing is started)."""
    configs: list[StackConfig] = []

    async def start(config: StackConfig) -> None:
        configs.append(config)

    monkeypatch.setattr(stack, "_up", start)
    monkeypatch.delenv("SHIPYARD_SINGLE_USER", raising=False)
    return configs


def _without_bubblewrap(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bubblewrap, "find", lambda run_as: MISSING)


def test_without_bubblewrap_up_says_only_operators_runs_start(
    monkeypatch: pytest.MonkeyPatch, started: list[StackConfig]
) -> None:
    _without_bubblewrap(monkeypatch)
    out = CliRunner().invoke(main.app, ["up"], env={"COLUMNS": "300"}).output
    assert MISSING in out and "Only operators' runs will start" in out and "--single-user" in out
    assert "SHIPYARD_SINGLE_USER" not in started[0].extra_env


def test_single_user_mode_is_passed_to_the_services(
    monkeypatch: pytest.MonkeyPatch, started: list[StackConfig]
) -> None:
    _without_bubblewrap(monkeypatch)
    out = CliRunner().invoke(main.app, ["up", "--single-user"], env={"COLUMNS": "300"}).output
    assert "Single-user mode: everyone's runs start" in out
    assert started[0].extra_env["SHIPYARD_SINGLE_USER"] == "true"


def test_with_bubblewrap_up_says_nothing_of_it(
    monkeypatch: pytest.MonkeyPatch, started: list[StackConfig]
) -> None:
    monkeypatch.setattr(bubblewrap, "find", lambda run_as: bubblewrap.Bubblewrap("/usr/bin/bwrap", None))
    out = CliRunner().invoke(main.app, ["up"]).output
    assert "isolated" not in out and len(started) == 1

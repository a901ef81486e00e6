"""``shipyard up`` where runs cannot be isolated: one line at the top of its banner says what is
missing, that runs will not find their inputs at their mount paths, and how to fix it."""

from __future__ import annotations

import io
from pathlib import Path
from types import SimpleNamespace

import pytest
from rich.console import Console

from shipyard.cli import stack
from shipyard.kit import bubblewrap
from shipyard.local import supervisor
from shipyard.local.isolation import isolation_notice
from shipyard.local.supervisor import StackConfig

MISSING = "bubblewrap is not installed (apt-get install bubblewrap)"


@pytest.fixture
def without_bubblewrap(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bubblewrap, "find", lambda run_as: MISSING)


@pytest.mark.usefixtures("without_bubblewrap")
def test_the_notice_says_what_is_missing_what_it_means_and_the_fix() -> None:
    notice = isolation_notice(single_user=False)
    assert notice is not None
    assert MISSING in notice and "restart Shipyard" in notice
    assert "not see their inputs and outputs at their mount paths" in notice
    assert "SHIPYARD_MOUNT_MNT_DATA" in notice and "only operators' runs start" in notice
    assert "\n" not in notice


@pytest.mark.usefixtures("without_bubblewrap")
def test_in_single_user_mode_the_notice_says_everyones_runs_start() -> None:
    notice = isolation_notice(single_user=True)
    assert notice is not None and "everyone's runs start" in notice and "only operators'" not in notice


def test_where_runs_are_isolated_there_is_no_notice(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bubblewrap, "find", lambda run_as: bubblewrap.Bubblewrap("/usr/bin/bwrap", None))
    assert isolation_notice(single_user=False) is None


class ReadySupervisor:
    """A supervisor whose stack is healthy at once (nothing is started)."""

    stopping = False

    def __init__(self, config: StackConfig, on_event: object) -> None:
        root = config.data_dir
        self.data = SimpleNamespace(root=root, admin_token=root / "admin-token", logs=root / "logs")

    async def start(self) -> None:
        return None

    async def wait_ready(self) -> bool:
        return True

    async def run_until_stopped(self) -> None:
        return None


@pytest.mark.usefixtures("without_bubblewrap")
async def test_up_prints_the_notice_as_the_first_line_of_its_banner(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    out = io.StringIO()
    monkeypatch.setattr(stack, "console", Console(file=out, width=80))
    monkeypatch.setattr(supervisor, "Supervisor", ReadySupervisor)
    await stack._up(StackConfig(data_dir=tmp_path))
    lines = out.getvalue().splitlines()
    assert lines[0] == isolation_notice(single_user=False), "the notice, whole on one line, comes first"
    assert lines[1].startswith("Shipyard is up.")

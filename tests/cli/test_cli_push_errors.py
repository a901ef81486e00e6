"""``shipyard dataset push`` when the archive or the platform refuses: one line saying why, exit 1,
never a traceback."""

from __future__ import annotations

import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import SimpleNamespace

import pytest
from typer.testing import CliRunner

from shipyard.cli import context, repos
from shipyard.cli.main import app
from shipyard.client import transfer
from shipyard.client.transfer import TransferError


@contextmanager
def _nothing_to_call() -> Iterator[SimpleNamespace]:
    yield SimpleNamespace()


def test_an_archive_entry_no_file_system_takes_is_refused_by_name(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(repos, "client", _nothing_to_call)
    archive = tmp_path / "long.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("data/" + "x" * 300 + ".csv", b"a,b\n")

    result = CliRunner().invoke(app, ["dataset", "push", "digits", str(archive), "--extract"])

    assert result.exit_code == 1
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert "Traceback" not in result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1, result.output
    assert "INVALID_ARGUMENT: long.zip: data/xxx" in lines[0]
    assert "is 304 bytes long; at most 255 are allowed; nothing was uploaded" in lines[0]
    assert "characters left out" in lines[0] and len(lines[0]) < 400


def test_a_full_disk_on_the_platform_is_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    class Connection:
        def __init__(self, _: object) -> None: ...

        def close(self) -> None: ...

    def full(*_: object, **__: object) -> None:
        raise TransferError("uploading data.csv failed: blob 00…: no space left on device on the "
                            "platform's blob store; nothing was stored (HTTP 507)", "RESOURCE_EXHAUSTED")

    monkeypatch.setattr(context, "Client", Connection)
    monkeypatch.setattr(context, "resolve_credentials", lambda: None)
    monkeypatch.setattr(transfer, "push", full)
    monkeypatch.setenv("SHIPYARD_UPLOAD_ONLY", "1")
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "data.csv").write_text("a,b\n")

    result = CliRunner().invoke(app, ["dataset", "push", "digits", str(tmp_path / "data")])

    assert result.exit_code == 1 and "Traceback" not in result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert lines[-1].startswith("RESOURCE_EXHAUSTED: uploading data.csv failed: ")
    assert "no space left on device" in lines[-1]

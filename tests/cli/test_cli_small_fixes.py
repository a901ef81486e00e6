"""Small things a new user met: DOT that Graphviz draws as meant, ``login`` naming --data-dir when
the stack runs elsewhere, and counts in words that agree with them."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from shipyard.cli import output
from shipyard.cli.lineage import as_dot
from shipyard.cli.main import app
from shipyard.client import transfer
from shipyard.contracts.lineage.v1 import lineage_pb2 as lpb
from shipyard.contracts.repo.v1 import repos_pb2


def test_dot_uses_dots_own_line_break_and_plain_utf8() -> None:
    graph = lpb.Graph(root="run:1", nodes=[
        lpb.Node(id="run:1", kind="run", label='train "best"', attributes={"status": "complete"}),
        lpb.Node(id="dataset:digits@1", kind="dataset", label="digits@1")],
        edges=[lpb.Edge(source="dataset:digits@1", target="run:1", relation="used")])

    dot = as_dot(graph)

    assert '"run:1" [label="train \\"best\\"\\nrun · complete", shape=box, penwidth=2];' in dot
    assert '"dataset:digits@1" -> "run:1" [label="used"];' in dot
    assert "\\\\n" not in dot and "\\u00b7" not in dot


@pytest.fixture
def listening() -> Iterator[str]:
    """A server address something answers at (as a running Shipyard would)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield f"127.0.0.1:{sock.getsockname()[1]}"


def test_login_with_the_stack_up_elsewhere_names_data_dir(tmp_path: Path, listening: str) -> None:
    result = CliRunner().invoke(app, ["login", "--server", listening, "--data-dir", str(tmp_path / "empty")],
                                env={"SHIPYARD_TOKEN": ""})

    assert result.exit_code == 1
    said = " ".join(result.output.split())
    assert f"Shipyard answers at {listening}" in said and "shipyard login --data-dir DIR" in said
    assert "run 'shipyard up' first" not in said


def test_login_with_nothing_running_says_to_start_it_or_name_the_directory(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["login", "--server", "127.0.0.1:9", "--data-dir", str(tmp_path)],
                                env={"SHIPYARD_TOKEN": ""})

    said = " ".join(result.output.split())
    assert result.exit_code == 1 and "nothing answers at 127.0.0.1:9" in said and "--data-dir DIR" in said


@pytest.mark.parametrize(("number", "said"),
                         [(0, "0 new blobs"), (1, "1 new blob"), (1200, "1,200 new blobs")])
def test_counts_agree_with_their_nouns(number: int, said: str) -> None:
    assert output.count(number, "new blob") == said


def test_a_push_of_one_new_file_says_blob(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                          replies: dict[str, Any]) -> None:
    def pushed(*_: object, **__: object) -> transfer.Pushed:
        return transfer.Pushed(repos_pb2.Version(number=2), uploaded_blobs=1, uploaded_bytes=4)

    monkeypatch.setattr(transfer, "push", pushed)
    monkeypatch.setenv("SHIPYARD_UPLOAD_ONLY", "1")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "data.csv").write_text("a,b\n")

    result = CliRunner().invoke(app, ["dataset", "push", "digits", str(tmp_path / "data")])

    assert result.exit_code == 0, result.output
    assert "Version 2 of digits: 1 file, 4 B; uploaded 1 new blob (4 B)" in result.output


def test_a_version_names_the_run_that_made_it() -> None:
    from shipyard.cli.repos import made_by
    from shipyard.contracts.repo.v1 import repos_pb2

    assert made_by(repos_pb2.Version(produced_by_run="0f3a9c", run_names={"0f3a9c": "train-1"})) == "train-1"
    assert made_by(repos_pb2.Version(produced_by_run="0f3a9c")) == "0f3a9c"  # recorded before names were kept
    assert made_by(repos_pb2.Version()) == "—"

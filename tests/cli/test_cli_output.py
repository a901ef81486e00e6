"""``-o table|json|yaml``: JSON a script can read (proto3 JSON, snake_case, one document), YAML the
same data, and tables that never cut a name or an id."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import yaml
from rich.console import Console
from typer import _click as click
from typer.testing import CliRunner

from shipyard.cli import output
from shipyard.cli.main import COMMANDS, app, command_of
from shipyard.contracts.repo.v1 import projects_pb2
from shipyard.contracts.run.v1 import runs_pb2

LONG = "digits-training-with-a-name-longer-than-any-terminal-is-wide-" + "x" * 60
SHOWS = {"list", "get", "versions", "metrics", "status", "dashboard", "activity", "dead-letters", "whoami",
         "last"}


def _project(name: str) -> projects_pb2.Project:
    project = projects_pb2.Project(name=name, owner="admin", revision=3)
    project.create_time.FromDatetime(datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC))
    return project


def invoke(*args: str) -> str:
    result = CliRunner().invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result.output


def test_a_list_is_one_json_array_of_proto3_json_objects(replies: dict[str, Any]) -> None:
    replies["ListProjects"] = projects_pb2.ListProjectsResponse(projects=[_project(LONG), _project("b")])

    doc = json.loads(invoke("project", "list", "-o", "json"))

    assert [p["name"] for p in doc] == [LONG, "b"]
    assert doc[0]["create_time"] == "2026-01-02T03:04:05Z" and doc[0]["revision"] == "3"
    assert doc[0]["leaderboard"] is False and doc[0]["thumbnail_url"] == ""  # every field, snake_case


def test_yaml_holds_the_same_data_and_an_empty_list_is_an_empty_array(replies: dict[str, Any]) -> None:
    replies["ListProjects"] = projects_pb2.ListProjectsResponse(projects=[_project("a")])
    assert yaml.safe_load(invoke("project", "list", "--output", "yaml")) == json.loads(
        invoke("project", "list", "-o", "json"))
    replies["ListProjects"] = projects_pb2.ListProjectsResponse()
    assert json.loads(invoke("project", "list", "-o", "json")) == []


def test_a_get_is_one_json_object(replies: dict[str, Any]) -> None:
    replies["GetRun"] = runs_pb2.Run(name="train-1", kind=runs_pb2.RUN_KIND_TRAINING,
                                     hyperparameters={"lr": "0.1"}, metrics={"accuracy": 0.5})

    doc = json.loads(invoke("run", "get", "train-1", "-o", "json"))

    assert (doc["name"], doc["kind"], doc["hyperparameters"], doc["metrics"]) == (
        "train-1", "RUN_KIND_TRAINING", {"lr": "0.1"}, {"accuracy": 0.5})


def test_a_piped_table_cuts_nothing(replies: dict[str, Any]) -> None:
    replies["ListProjects"] = projects_pb2.ListProjectsResponse(projects=[_project(LONG)])
    assert LONG in invoke("project", "list")  # not a terminal: no width limit, one line per row


def test_in_a_narrow_terminal_names_fold_but_are_never_cut() -> None:
    table = output.table("Name", "Description", "Owner")
    table.add_row(LONG, "a description long enough that it has to wrap " * 3, "admin")
    screen = io.StringIO()
    Console(file=screen, width=60, force_terminal=True, color_system=None).print(table)

    assert "…" not in screen.getvalue()
    name_column = "".join(line.split("│")[1].strip() for line in screen.getvalue().splitlines()
                          if line.count("│") == 4)
    assert name_column == LONG


def _subcommands(command: click.Command, path: str) -> Iterator[tuple[str, click.Command]]:
    yield path, command
    for name, child in getattr(command, "commands", {}).items():
        yield from _subcommands(child, f"{path} {name}")


def test_every_list_and_get_command_takes_output() -> None:
    shows = [(path, cmd) for name, entry in COMMANDS.items()
             for path, cmd in _subcommands(command_of(name, entry.load()), name)
             if path.split()[-1] in SHOWS]
    missing = [path for path, cmd in shows if not any("--output" in p.opts for p in cmd.params)]
    assert len(shows) > 20 and missing == []

"""How the CLI shows a refused call: ``INVALID_ARGUMENT: name: must be …`` with the field and the
problem from the status details, one line, exit 1."""

from __future__ import annotations

from collections.abc import Iterator
from types import SimpleNamespace

import pytest
from typer.testing import CliRunner

from shipyard.cli import context
from shipyard.cli.main import app
from shipyard.client.connection import ClientError


class Refusing:
    """A connection whose every call is refused with ``error``."""

    error = ClientError("INVALID_ARGUMENT", "a message the CLI does not parse", field="project.name",
                        problem="may contain only letters")

    identity = SimpleNamespace(WhoAmI=None)  # what whoami calls

    def __init__(self, _: object) -> None: ...

    def call(self, *_: object, **__: object) -> None:
        raise self.error

    def close(self) -> None: ...


@pytest.fixture
def refusing(monkeypatch: pytest.MonkeyPatch) -> Iterator[type[Refusing]]:
    monkeypatch.setattr(context, "Client", Refusing)
    yield Refusing


def test_a_bad_request_shows_the_field_and_problem_the_details_name(refusing: type[Refusing]) -> None:
    result = CliRunner().invoke(app, ["whoami"])

    assert result.exit_code == 1
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert lines == ["INVALID_ARGUMENT: project.name: may contain only letters"], result.output


def test_an_error_without_a_field_shows_its_message(refusing: type[Refusing],
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(refusing, "error", ClientError("NOT_FOUND", "no [bold]project[/] named 'x'"))

    result = CliRunner().invoke(app, ["whoami"])

    assert result.exit_code == 1
    assert result.output.strip() == "NOT_FOUND: no [bold]project[/] named 'x'"

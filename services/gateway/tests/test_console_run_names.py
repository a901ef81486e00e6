"""Runs by name on the console: the names versions keep are used as they are, and only the runs
they do not name are looked up."""

from __future__ import annotations

from typing import Any, cast

from shipyard_gateway.entrypoints.console.edge import Console
from shipyard_gateway.entrypoints.console.run_names import run_names

from shipyard.contracts.run.v1 import runs_pb2


class Runs:
    """A console whose ListRuns answers with ``runs`` and counts the calls."""

    def __init__(self, *runs: tuple[str, str]) -> None:
        self.runs = runs
        self.calls = 0

    async def call(self, request: Any, method: str, message: Any, reply: Any) -> runs_pb2.ListRunsResponse:
        self.calls += 1
        return runs_pb2.ListRunsResponse(runs=[runs_pb2.Run(id=i, name=n) for i, n in self.runs])


async def test_names_a_version_keeps_need_no_lookup() -> None:
    console = Runs(("r1", "from-the-list"))
    names = await run_names(cast(Console, console), None, ["r1", "r2"],  # type: ignore[arg-type]
                            known={"r1": "train-1", "r2": "evaluate-3"})
    assert (names, console.calls) == ({"r1": "train-1", "r2": "evaluate-3"}, 0)


async def test_only_the_runs_not_named_are_looked_up() -> None:
    console = Runs(("r2", "evaluate-3"), ("r9", "other"))
    names = await run_names(cast(Console, console), None, ["r1", "r2", ""],  # type: ignore[arg-type]
                            known={"r1": "train-1"})
    assert (names, console.calls) == ({"r1": "train-1", "r2": "evaluate-3"}, 1)

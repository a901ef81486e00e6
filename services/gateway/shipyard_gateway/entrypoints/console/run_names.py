"""Runs by name where the platform records them by id (a version's "made by run" and "used by"):
pages show the run's name, linked to its page."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from aiohttp import web

from shipyard.contracts.run.v1 import runs_pb2
from shipyard_gateway.entrypoints.console.calls import ConsoleError
from shipyard_gateway.entrypoints.console.edge import Console

LIST_RUNS = "/shipyard.run.v1.RunService/ListRuns"
LOOKED_AT = 1000  # the newest runs; an older one is shown by its id


async def run_names(console: Console, request: web.Request, ids: Iterable[str],
                    known: Mapping[str, str] | None = None) -> dict[str, str]:
    """The names of the runs with ``ids``: those ``known`` already (the names versions keep), the
    others among the newest runs the user may see (one call); a run found in neither stays out
    and is shown by its id."""
    names = dict(known or {})
    wanted = {run_id for run_id in ids if run_id and run_id not in names}
    if not wanted:
        return names
    try:
        page = await console.call(request, LIST_RUNS, runs_pb2.ListRunsRequest(page_size=LOOKED_AT),
                                  runs_pb2.ListRunsResponse)
    except ConsoleError as exc:
        if exc.signed_out:
            raise
        return names
    return {**names, **{run.id: run.name for run in page.runs if run.id in wanted}}

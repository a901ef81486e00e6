"""The versions a run made: what its page shows in place of "next" once it ended."""

from __future__ import annotations

from aiohttp import web

from shipyard.contracts.repo.v1 import repos_pb2
from shipyard.contracts.run.v1 import runs_pb2
from shipyard_gateway.entrypoints.console.calls import ConsoleError
from shipyard_gateway.entrypoints.console.edge import Console

LIST_VERSIONS = "/shipyard.repo.v1.RepoService/ListVersions"
LOOKED_AT = 50  # the output repo's newest versions; the run's is among them unless many runs wrote since


async def made_versions(console: Console, request: web.Request, run: runs_pb2.Run) -> dict[str, int]:
    """``"<kind>/<repo>"`` → the number of the version the run made there, for each output that got one
    (none while the run is live, or where it failed; a repo the user may no longer read stays out)."""
    made: dict[str, int] = {}
    for output in run.outputs:
        kind = f"REPO_KIND_{output.repo_kind.upper()}"
        try:
            versions = await console.call(
                request, LIST_VERSIONS,
                repos_pb2.ListVersionsRequest(kind=kind, repo=output.repo, page_size=LOOKED_AT),
                repos_pb2.ListVersionsResponse)
        except ConsoleError as exc:
            if exc.signed_out:
                raise
            continue
        number = next((v.number for v in versions.versions if v.produced_by_run == run.id), None)
        if number is not None:
            made[f"{output.repo_kind}/{output.repo}"] = number
    return made

"""Runs side by side: hyperparameters, logged params and last metric values in a table, and each
metric's curves of all the runs overlaid in one chart (what ``shipyard run compare`` shows, plus the
curves)."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from shipyard.contracts.run.v1 import runs_pb2 as pb
from shipyard_gateway.entrypoints.console.calls import ConsoleError
from shipyard_gateway.entrypoints.console.edge import Console
from shipyard_gateway.entrypoints.console.runs import SERVICE, chart_value, status_name

MOST = 8  # runs in one comparison: more curves than that cannot be told apart


def overlaid(series_by_run: dict[str, pb.GetRunMetricsResponse]) -> list[dict[str, Any]]:
    """For each metric, the runs' curves on one step axis: ``{"name", "steps", "runs": [{"run",
    "values"}]}``, a value None where a run has no point at that step (uPlot leaves a gap)."""
    names = sorted({s.name for metrics in series_by_run.values() for s in metrics.series})
    charts = []
    for name in names:
        by_run = {
            run: {p.step: p.value for s in metrics.series if s.name == name for p in s.points}
            for run, metrics in series_by_run.items()
        }
        steps = sorted({step for points in by_run.values() for step in points})
        charts.append(
            {
                "name": name,
                "steps": steps,
                "runs": [
                    {"run": run, "values": [chart_value(points.get(step)) for step in steps]}
                    for run, points in by_run.items()
                ],
            }
        )
    return charts


class RunComparePages:
    """``/runs/compare?name=a&name=b…``."""

    def __init__(self, console: Console) -> None:
        self._console = console

    def add_routes(self, app: web.Application) -> None:
        app.router.add_get("/runs/compare", self._console.guarded(self.compare))

    async def compare(self, request: web.Request) -> web.Response:
        names = list(dict.fromkeys(n.strip() for n in request.query.getall("name", []) if n.strip()))
        if not 2 <= len(names) <= MOST:
            raise ConsoleError.invalid("name", f"pick 2 to {MOST} runs to compare (got {len(names)})")
        runs = [
            await self._console.call(request, f"{SERVICE}/GetRun", pb.GetRunRequest(name=n), pb.Run)
            for n in names
        ]
        metrics = {
            n: await self._console.call(
                request, f"{SERVICE}/GetRunMetrics", pb.GetRunMetricsRequest(name=n), pb.GetRunMetricsResponse
            )
            for n in names
        }
        hyperparameters = sorted({k for run in runs for k in run.hyperparameters})
        params = sorted({k for run in runs for k in run.params})
        last_values = sorted({k for run in runs for k in run.metrics})
        return await self._console.page(
            request,
            "runs/compare.html.j2",
            "runs",
            runs=runs,
            hyperparameters=hyperparameters,
            params=params,
            last_values=last_values,
            charts=overlaid(metrics),
            status_name=status_name,
        )

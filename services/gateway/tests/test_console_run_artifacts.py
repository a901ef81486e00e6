"""A run's artifacts on the console: downloads are saved under the file's own name whatever its
characters, and a run that logged none costs no call."""

from __future__ import annotations

import json
import math
from typing import Any, cast
from urllib.parse import unquote

from shipyard_gateway.entrypoints.console.edge import Console
from shipyard_gateway.entrypoints.console.run_artifacts import artifact_files, attachment
from shipyard_gateway.entrypoints.console.run_compare import overlaid
from shipyard_gateway.entrypoints.console.runs import chart_series

from shipyard.contracts.run.v1 import runs_pb2
from shipyard.contracts.run.v1 import tracking_pb2 as tpb


def test_a_download_is_named_after_the_file_quoted_whatever_its_characters() -> None:
    header = attachment('plots/a "quoted"; name\r\nX: y é.png')
    assert header.startswith("attachment; filename*=UTF-8''")
    name = header.removeprefix("attachment; filename*=UTF-8''")
    assert unquote(name) == 'a "quoted"; name\r\nX: y é.png'
    assert not set(name) & set('"; \r\n')


class Listing:
    """A console whose ListArtifacts answers with ``files`` and records the requests."""

    def __init__(self, *files: tpb.ArtifactFile) -> None:
        self.files = files
        self.requests: list[Any] = []

    async def call(self, request: Any, method: str, message: Any, reply: Any) -> tpb.ListArtifactsResponse:
        self.requests.append(message)
        return tpb.ListArtifactsResponse(files=self.files)


async def test_the_files_of_a_run_every_one_below_the_root() -> None:
    console = Listing(tpb.ArtifactFile(path="plots", is_dir=True), tpb.ArtifactFile(path="plots/a.png"))
    run = runs_pb2.Run(id="r1", name="train", artifact_count=1)
    files = await artifact_files(cast(Console, console), None, run)  # type: ignore[arg-type]
    assert [f.path for f in files] == ["plots/a.png"]
    owner = tpb.ArtifactOwner(run_id="r1")
    assert console.requests == [tpb.ListArtifactsRequest(owner=owner, recursive=True)]


async def test_a_run_that_logged_no_artifacts_costs_no_call() -> None:
    console = Listing()
    files = await artifact_files(cast(Console, console), None, runs_pb2.Run(id="r1"))  # type: ignore[arg-type]
    assert (files, console.requests) == ([], [])


def test_nan_and_infinite_metric_values_are_gaps_in_the_charts_json() -> None:
    """MLflow logs NaN and ±inf; JSON has no such numbers, and one of them would break every chart."""
    metrics = runs_pb2.GetRunMetricsResponse(series=[runs_pb2.MetricSeries(name="loss", points=[
        runs_pb2.MetricPoint(step=0, value=0.5), runs_pb2.MetricPoint(step=1, value=math.nan),
        runs_pb2.MetricPoint(step=2, value=math.inf)])])
    charts = chart_series(metrics)
    assert charts == [{"name": "loss", "steps": [0, 1, 2], "values": [0.5, None, None]}]
    json.loads(json.dumps(charts, allow_nan=False))
    overlaid_charts = overlaid({"a": metrics})
    assert overlaid_charts[0]["runs"][0]["values"] == [0.5, None, None]

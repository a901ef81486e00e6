"""Hyperparameter studies: the list, a study's page (its status, the trials graph, the parallel-coordinates
view, the best trials and every trial, live while it runs), its results as CSV or JSON (the columns of
``shipyard study download``), and stop."""

from __future__ import annotations

import json
import math
from typing import Any
from urllib.parse import urlencode

from aiohttp import web

from shipyard.contracts.run.v1 import studies_pb2 as pb
from shipyard.kit.study_results import parameter_names, result_rows, results_csv, study_status, trial_state
from shipyard_gateway.domain.policy import POLICY
from shipyard_gateway.entrypoints.console.calls import CALLER, selected_project
from shipyard_gateway.entrypoints.console.edge import Console
from shipyard_gateway.entrypoints.console.parallel_coordinates import parallel_coordinates
from shipyard_gateway.entrypoints.console.run_artifacts import attachment
from shipyard_gateway.entrypoints.console.study_results import (
    LIVE_STATUSES,
    is_live,
    objective_goal,
    spec_parameters,
    trials_graph,
    watched_metrics,
)

SERVICE = "/shipyard.run.v1.StudyService"
STOP = f"{SERVICE}/StopStudy"
PAGE_SIZE = 50
ALL_PAGE = 1000  # ListTrials' largest page: the graph and the downloads read every trial
BEST_SHOWN = 5


def may_stop(request: web.Request, study: pb.Study) -> bool:
    """Whether the signed-in user may stop the study: their roles may call StopStudy, and it is theirs or
    they are an operator (run-svc's own rule; it refuses anyone else anyway)."""
    caller = request[CALLER]
    allowed = bool(caller.roles & POLICY.get(STOP, frozenset()))
    return allowed and (caller.user == study.owner or caller.is_operator)


def best_trials(study: pb.Study, trials: list[pb.Trial], top: int = BEST_SHOWN) -> list[pb.Trial]:
    """The succeeded trials with the best objectives, best first."""
    succeeded = [t for t in trials if t.state == pb.TRIAL_STATE_SUCCEEDED and t.has_objective
                 and math.isfinite(t.objective)]
    succeeded.sort(key=lambda t: (t.objective, -t.number), reverse=study.objective_type == "maximize")
    return succeeded[:top]


def _ordering(request: web.Request, metrics: list[str]) -> tuple[str, bool]:
    """The trials table's order as the query asks it: ``sort`` number, objective or a watched metric."""
    sort = request.query.get("sort", "number")
    return (sort if sort in ("number", "objective", *metrics) else "number"), request.query.get("desc") == "1"


class StudyPages:
    """``/studies…``."""

    def __init__(self, console: Console) -> None:
        self._console = console

    def add_routes(self, app: web.Application) -> None:
        guarded = self._console.guarded
        app.router.add_get("/studies", guarded(self.listing))
        app.router.add_get("/studies/{name}", guarded(self.detail))
        app.router.add_get("/studies/{name}/trials.{format:csv|json}", guarded(self.download))
        app.router.add_post("/studies/{name}/stop", guarded(self.stop))

    async def listing(self, request: web.Request) -> web.Response:
        token = request.query.get("page", "")
        page = await self._console.call(
            request, f"{SERVICE}/ListStudies",
            pb.ListStudiesRequest(project=selected_project(request), page_size=PAGE_SIZE, page_token=token),
            pb.ListStudiesResponse)
        return await self._console.page(
            request, "studies/list.html.j2", "studies", studies=page.studies, status_of=study_status,
            next_url="/studies?" + urlencode({"page": page.next_page_token}) if page.next_page_token else "")

    async def detail(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        study = await self._get(request, name)
        metrics = watched_metrics(study)
        sort, descending = _ordering(request, metrics)
        token = request.query.get("page", "")
        trials = await self._all_trials(request, name)
        table = await self._console.call(
            request, f"{SERVICE}/ListTrials",
            pb.ListTrialsRequest(study=name, order_by=sort, descending=descending, page_size=PAGE_SIZE,
                                 page_token=token),
            pb.ListTrialsResponse)
        ordering = {"sort": sort, "desc": "1" if descending else ""}
        shown = {k: v for k, v in {**ordering, "page": token}.items() if v}
        context: dict[str, Any] = {
            "study": study,
            "status_word": study_status(study.status),
            "live": is_live(study),
            "metrics": metrics,
            "goal": objective_goal(study),
            "stoppable": study.status in LIVE_STATUSES and may_stop(request, study),
            "parameters": parameter_names(study, trials),
            "graph": trials_graph(study, trials),
            "chart": parallel_coordinates(study, spec_parameters(study), trials),
            "best": best_trials(study, trials),
            "trials": table.trials,
            "trial_count": len(trials),
            "ordering": ordering,
            "sorts": ["number", "objective", *metrics],
            "state_of": trial_state,
            "body_url": f"/studies/{name}?" + urlencode({**shown, "fragment": "body"}),
            "next_url": f"/studies/{name}?" + urlencode({**ordering, "page": table.next_page_token})
                        if table.next_page_token else "",
        }
        if request.query.get("fragment") == "body":
            return self._console.fragment("studies/body.html.j2", **context)
        return await self._console.page(request, "studies/detail.html.j2", "studies", **context)

    async def download(self, request: web.Request) -> web.Response:
        """Every trial's parameters and metrics, as ``shipyard study download`` writes them."""
        name, kind = request.match_info["name"], request.match_info["format"]
        study = await self._get(request, name)  # an unknown study is a 404 page, not an empty file
        rows = result_rows(await self._all_trials(request, name), study)
        disposition = {"Content-Disposition": attachment(f"{name}-trials.{kind}")}
        if kind == "json":
            return web.Response(text=json.dumps(rows, indent=2) + "\n", content_type="application/json",
                                headers=disposition)
        return web.Response(text=results_csv(rows), content_type="text/csv", headers=disposition)

    async def stop(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        await self._console.call(request, STOP, pb.StopStudyRequest(name=name), pb.Study)
        raise web.HTTPSeeOther(f"/studies/{name}")

    async def _get(self, request: web.Request, name: str) -> pb.Study:
        return await self._console.call(request, f"{SERVICE}/GetStudy", pb.GetStudyRequest(name=name),
                                        pb.Study)

    async def _all_trials(self, request: web.Request, name: str) -> list[pb.Trial]:
        found: list[pb.Trial] = []
        token = ""
        while True:
            reply = await self._console.call(
                request, f"{SERVICE}/ListTrials",
                pb.ListTrialsRequest(study=name, page_size=ALL_PAGE, page_token=token), pb.ListTrialsResponse)
            found.extend(reply.trials)
            token = reply.next_page_token
            if not token:
                return found

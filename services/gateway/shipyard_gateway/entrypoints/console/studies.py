"""Hyperparameter studies: the list, a study's page (its status, the trials graph, the parallel-coordinates
view, the best trials and every trial, live while it runs), its results as CSV or JSON (the columns of
``shipyard study download``), and stop."""

from __future__ import annotations

import hashlib
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
from shipyard_gateway.entrypoints.console.study_limits import may_edit_limits
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
PARALLEL_MOST = 500  # lines of the parallel-coordinates chart: the best succeeded trials beyond it
# A study of more trials than this re-reads them all (the graph, the chart, the best) on a refresh only when
# one started or ended, not at each metric a running trial logs; smaller ones whenever any trial changed.
RESULTS_EVERY_CHANGE = ALL_PAGE
RESULTS_HEADER = "X-Study-Results"  # the version of the graph, chart and best trials the page shows
PAGE_VERSION = "1"  # of what a study page shows: a new console renders pages anew


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


def trial_count(study: pb.Study) -> int:
    """The study's trials, from its counts per state."""
    c = study.counts
    return (c.created + c.running + c.succeeded + c.killed + c.failed + c.metrics_unavailable
            + c.early_stopped)


def _version(*parts: bytes | str) -> str:
    digest = hashlib.sha256()
    for part in parts:
        digest.update(part.encode() if isinstance(part, str) else part)
        digest.update(b"\0")
    return f'"{digest.hexdigest()[:32]}"'


def _copy(study: pb.Study) -> pb.Study:
    copy = pb.Study()
    copy.CopyFrom(study)
    return copy


def results_version(study: pb.Study) -> str:
    """The version of the study's graph, parallel coordinates and best trials: of the whole study (its
    trials' revision included) up to ``RESULTS_EVERY_CHANGE`` trials; beyond, of its status, counts and
    best trial only, so that a running trial's metrics do not make the page read thousands of trials."""
    if trial_count(study) > RESULTS_EVERY_CHANGE:
        study = _copy(study)
        study.ClearField("trials_revision")
    return _version(PAGE_VERSION, study.SerializeToString(deterministic=True))


def page_version(request: web.Request, study: pb.Study, stoppable: bool) -> str:
    """The version of the study's live part as this request asks it (its ordering and page): an entity tag
    the refresh sends back in ``If-None-Match``."""
    asked = sorted((k, v) for k, v in request.query.items() if k != "fragment")
    return _version(PAGE_VERSION, study.SerializeToString(deterministic=True), json.dumps(asked),
                    str(stoppable))


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
        """The study's page, or its live part (``fragment=body``) as the page refreshes it: nothing (204, the
        page keeps what it shows) when the study is as the page's ``If-None-Match`` says, and its results
        (graph, parallel coordinates, best trials; read from every trial) left as they are (``hx-preserve``)
        while they are as its ``X-Study-Results`` says."""
        name = request.match_info["name"]
        study = await self._get(request, name)
        stoppable = study.status in LIVE_STATUSES and may_stop(request, study)
        fragment = request.query.get("fragment") == "body"
        version, results = page_version(request, study, stoppable), results_version(study)
        if fragment and request.headers.get("If-None-Match") == version:
            return web.Response(status=204)
        fresh = not fragment or request.headers.get(RESULTS_HEADER) != results
        metrics = watched_metrics(study)
        sort, descending = _ordering(request, metrics)
        token = request.query.get("page", "")
        trials = await self._all_trials(request, name) if fresh else []
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
            "stoppable": stoppable,
            "may_edit_limits": may_edit_limits(request, study),
            "parameters": parameter_names(study, trials if fresh else table.trials),
            "fresh": fresh,
            "graph": trials_graph(study, trials) if fresh else None,
            "chart": parallel_coordinates(study, spec_parameters(study), trials, PARALLEL_MOST),
            "best": best_trials(study, trials),
            "trials": table.trials,
            "trial_count": len(trials) if fresh else trial_count(study),
            "versions": {"If-None-Match": version, RESULTS_HEADER: results},
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

"""The console's hyperparameter studies without a stack: the pages rendered from faked StudyService answers,
the downloads' columns (those of ``shipyard study download``), who is offered "Stop study", the run form's
tuning upload forwarded and its refusal shown at the upload, the runs list's study mark and hidden trials.
(On a real stack, in a browser: tests/browser/test_console_studies.py.)"""

from __future__ import annotations

import csv
import html
import io
import json
import re
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any, cast

import grpc
import pytest
from aiohttp import FormData, web
from aiohttp.test_utils import TestClient, TestServer
from google.protobuf.message import Message
from shipyard_gateway.entrypoints.console.calls import TOKEN_COOKIE, ConsoleError
from shipyard_gateway.entrypoints.console.edge import WHOAMI, Console
from shipyard_gateway.entrypoints.console.parallel_coordinates import parallel_coordinates
from shipyard_gateway.entrypoints.console.run_form import RunFormPages
from shipyard_gateway.entrypoints.console.runs import RunPages
from shipyard_gateway.entrypoints.console.studies import StudyPages
from shipyard_gateway.entrypoints.console.study_results import trials_graph

from shipyard.contracts.gateway.v1 import gateway_pb2
from shipyard.contracts.run.v1 import runs_pb2
from shipyard.contracts.run.v1 import studies_pb2 as pb
from shipyard.kit.caller import Caller
from shipyard.kit.study_results import result_rows

PARAMETERS: list[dict[str, Any]] = [
    {"name": "lr", "parameterType": "double",
     "feasibleSpace": {"min": "0.001", "max": "0.1", "distribution": "logUniform"}},
    {"name": "optimizer", "parameterType": "categorical", "feasibleSpace": {"list": ["sgd", "adam", "ftrl"]}},
]
SPEC = {
    "objective": {"type": "maximize", "objectiveMetricName": "accuracy", "goal": 0.99,
                  "additionalMetricNames": ["loss"]},
    "algorithm": {"algorithmName": "random"},
    "parameters": PARAMETERS,
}
ROLES = {"operator": gateway_pb2.ROLE_OPERATOR, "data-scientist": gateway_pb2.ROLE_DATA_SCIENTIST,
         "production-engineer": gateway_pb2.ROLE_PRODUCTION_ENGINEER}


def trial(number: int, state: int = pb.TRIAL_STATE_SUCCEEDED, accuracy: float | None = None,
          lr: str = "0.01", optimizer: str = "sgd") -> pb.Trial:
    made = pb.Trial(name=f"tune-t{number:03d}", number=number, state=state,
                    assignment={"lr": lr, "optimizer": optimizer})
    if accuracy is not None:
        made.objective, made.has_objective = accuracy, True
        made.metrics.extend([pb.TrialMetric(name="accuracy", min=accuracy, max=accuracy, latest=accuracy),
                             pb.TrialMetric(name="loss", min=0.2, max=0.9, latest=0.3)])
    return made


TRIALS = [trial(1, accuracy=0.7, lr="0.001", optimizer="sgd"),
          trial(2, accuracy=0.9, lr="0.01", optimizer="adam"),
          trial(3, pb.TRIAL_STATE_FAILED),
          trial(4, accuracy=0.8, lr="0.1", optimizer="ftrl"),
          trial(5, pb.TRIAL_STATE_METRICS_UNAVAILABLE),
          trial(6, pb.TRIAL_STATE_RUNNING, lr="0.05", optimizer="adam")]


def study(status: int = pb.STUDY_STATUS_RUNNING, owner: str = "ada") -> pb.Study:
    return pb.Study(name="tune", owner=owner, project="mnist", status=status, reason="ExperimentRunning",
                    spec_json=json.dumps(SPEC), algorithm="random", objective_metric="accuracy",
                    objective_type="maximize", parallel_trial_count=2, max_trial_count=8,
                    max_failed_trial_count=3, trials=6,
                    counts=pb.TrialCounts(succeeded=3, failed=1, metrics_unavailable=1, running=1),
                    best_trial=TRIALS[1])


Answer = Callable[[Message], Message]
Client = TestClient[web.Request, web.Application]


@dataclass
class FakeCalls:
    """The public API as the console sees it: ``answers`` by method (a reply, or raising ConsoleError), an
    empty reply for any other method; every request kept."""

    user: str
    roles: list[str]
    answers: dict[str, Answer] = field(default_factory=dict)
    requests: list[tuple[str, Message]] = field(default_factory=list)

    async def caller(self, request: web.Request, method: str) -> Caller:
        return Caller(self.user, frozenset(self.roles))

    async def call(self, request: web.Request, method: str, message: Message, reply_type: type[Any]) -> Any:
        self.requests.append((method, message))
        if method == WHOAMI:
            return gateway_pb2.User(name=self.user, roles=[ROLES[r] for r in self.roles])
        answer = self.answers.get(method)
        return answer(message) if answer else reply_type()

    def asked(self, method: str) -> list[Any]:
        return [m for name, m in self.requests if name.endswith(method)]


def studies_answers(shown: pb.Study, trials: list[pb.Trial]) -> dict[str, Answer]:
    def list_trials(message: Message) -> Message:
        asked = cast(pb.ListTrialsRequest, message)
        found = sorted(trials, key=lambda t: t.number)
        if asked.order_by == "objective":
            found.sort(key=lambda t: (not t.has_objective, -t.objective if asked.descending else t.objective))
        return pb.ListTrialsResponse(trials=found)

    def get_study(message: Message) -> Message:
        if cast(pb.GetStudyRequest, message).name != shown.name:
            raise ConsoleError(grpc.StatusCode.NOT_FOUND, "no study named 'other'")
        return shown

    service = "/shipyard.run.v1.StudyService"
    return {f"{service}/GetStudy": get_study, f"{service}/ListTrials": list_trials,
            f"{service}/ListStudies": lambda m: pb.ListStudiesResponse(studies=[shown]),
            f"{service}/StopStudy": lambda m: shown}


@pytest.fixture
async def console() -> AsyncIterator[Callable[..., Any]]:
    """Serve the studies, runs and run form pages over faked calls; ``open(user, roles, answers)`` gives a
    signed-in client and the fake."""
    clients: list[Client] = []

    async def open_(user: str = "ada", roles: tuple[str, ...] = ("data-scientist",),
                    answers: dict[str, Answer] | None = None) -> tuple[Client, FakeCalls]:
        pages = Console(cast(Any, None), cast(Any, None), cast(Any, None))
        calls = FakeCalls(user, list(roles), answers or studies_answers(study(), TRIALS))
        pages.calls = cast(Any, calls)
        app = web.Application()
        RunFormPages(pages).add_routes(app)
        RunPages(pages).add_routes(app)
        StudyPages(pages).add_routes(app)
        client = TestClient(TestServer(app), cookies={TOKEN_COOKIE: "session"})
        await client.start_server()
        clients.append(client)
        return client, calls

    yield open_
    for client in clients:
        await client.close()


async def test_a_study_page_shows_its_status_limits_best_trial_graph_and_tables(console: Any) -> None:
    client, _ = await console()
    page = await (await client.get("/studies/tune")).text()
    assert 'id="study-status">Running</span>' in page and "ExperimentRunning" in page
    assert re.search(r'<span data-count="succeeded">3 succeeded</span>', page)
    assert "maximize accuracy, goal 0.99" in page
    assert "2 in parallel, at most 8 trials, fails once 3 trials failed or reported no accuracy" in page
    assert '<a href="/runs/tune-t002">tune-t002</a>: accuracy = 0.9' in page
    graph = json.loads(re.search(r'id="trials-graph-data">(.*?)</script>', page, re.S)[1])  # type: ignore[index]
    assert graph["numbers"] == [1, 2, 3, 4, 5, 6]
    assert graph["best"] == [0.7, 0.9, 0.9, 0.9, 0.9, 0.9]
    # the parallel coordinates: a line per succeeded trial, axes for each parameter and the objective
    assert len(re.findall(r"<polyline data-trial=", page)) == 3
    assert re.findall(r'data-axis="([^"]+)"', page) == ["lr", "optimizer", "accuracy (objective)"]
    best = re.search(r'<table id="best-trials">(.*?)</table>', page, re.S)[1]  # type: ignore[index]
    assert re.findall(r'<tr data-trial="([^"]+)"', best) == ["tune-t002", "tune-t004", "tune-t001"]
    table = re.search(r'<table id="trials">(.*?)</table>', page, re.S)[1]  # type: ignore[index]
    assert len(re.findall(r'<tr data-trial="', table)) == 6 and "MetricsUnavailable" in table
    assert '<a href="/runs/tune-t003">tune-t003</a>' in table
    assert 'hx-trigger="sse:study throttle:1s, sse:trial throttle:1s, every 3s"' in page  # live while running
    assert 'id="stop-study"' in page  # the owner, a data scientist, may stop it


async def test_a_finished_study_stops_refreshing_and_offers_no_stop(console: Any) -> None:
    ended = study(pb.STUDY_STATUS_SUCCEEDED)
    ended.counts.running = 0
    client, _ = await console(answers=studies_answers(ended, TRIALS))
    page = await (await client.get("/studies/tune")).text()
    assert 'id="study-status">Succeeded</span>' in page
    assert "every 3s" not in page and 'id="stop-study"' not in page


async def test_a_stopped_study_refreshes_until_its_trials_are_killed(console: Any) -> None:
    stopped = study(pb.STUDY_STATUS_STOPPED)  # one trial still running: it is killed after the study ended
    client, _ = await console(answers=studies_answers(stopped, TRIALS))
    page = await (await client.get("/studies/tune")).text()
    assert "every 3s" in page and 'id="stop-study"' not in page


async def test_the_trials_table_is_sorted_and_paged_by_list_trials(console: Any) -> None:
    client, calls = await console()
    page = await (await client.get("/studies/tune?sort=objective&desc=1")).text()
    table = re.search(r'<table id="trials">(.*?)</table>', page, re.S)[1]  # type: ignore[index]
    assert re.findall(r'<tr data-trial="([^"]+)"', table)[:3] == ["tune-t002", "tune-t004", "tune-t001"]
    paged = [m for m in calls.asked("ListTrials") if m.page_size == 50]
    assert [(m.order_by, m.descending) for m in paged] == [("objective", True)]
    await client.get("/studies/tune?sort=__import__&page=abc")
    last = [m for m in calls.asked("ListTrials") if m.page_size == 50][-1]
    assert (last.order_by, last.descending, last.page_token) == ("number", False, "abc")
    await client.get("/studies/tune?sort=loss")
    assert [m for m in calls.asked("ListTrials") if m.page_size == 50][-1].order_by == "loss"


@pytest.mark.parametrize(("user", "roles", "offered"), [
    ("ada", ("data-scientist",), True),          # the owner
    ("bob", ("data-scientist",), False),         # a developer, not its owner: run-svc would refuse
    ("root", ("operator",), True),
    ("ada", ("production-engineer",), False),    # may not call StopStudy at all
])
async def test_stop_study_is_offered_to_who_may_stop_it(console: Any, user: str, roles: tuple[str, ...],
                                                        offered: bool) -> None:
    client, _ = await console(user, roles)
    page = await (await client.get("/studies/tune")).text()
    assert ('id="stop-study"' in page) is offered
    if offered:
        assert 'data-confirm="Stop study tune?' in page


async def test_stopping_a_study_calls_stop_study_and_a_refusal_is_an_error_page(console: Any) -> None:
    client, calls = await console()
    stopped = await client.post("/studies/tune/stop", allow_redirects=False)
    assert (stopped.status, stopped.headers["Location"]) == (303, "/studies/tune")
    assert calls.asked("StopStudy") == [pb.StopStudyRequest(name="tune")]

    def refuse(message: Message) -> Message:
        raise ConsoleError(grpc.StatusCode.PERMISSION_DENIED, "run 'tune' belongs to 'ada'")

    client, _ = await console("bob", answers={**studies_answers(study(), TRIALS),
                                              "/shipyard.run.v1.StudyService/StopStudy": refuse})
    refused = await client.post("/studies/tune/stop", allow_redirects=False)
    assert refused.status == 403 and "belongs to" in await refused.text()


async def test_downloads_have_every_trials_columns_and_rows(console: Any) -> None:
    client, _ = await console()
    response = await client.get("/studies/tune/trials.csv")
    assert response.content_type == "text/csv"
    assert response.headers["Content-Disposition"] == "attachment; filename*=UTF-8''tune-trials.csv"
    rows = list(csv.DictReader(io.StringIO(await response.text())))
    expected = result_rows(TRIALS, study())  # the CLI's: tests/cli/test_cli_study_columns.py
    assert list(rows[0]) == list(expected[0])
    assert sorted(rows[0]) == sorted([
        "number", "name", "state", "lr", "optimizer", "accuracy.latest", "accuracy.min", "accuracy.max",
        "loss.latest", "loss.min", "loss.max", "objective"])
    assert [r["state"] for r in rows] == ["Succeeded", "Succeeded", "Failed", "Succeeded",
                                         "MetricsUnavailable", "Running"]
    assert rows[1]["objective"] == "0.9" and rows[2]["objective"] == ""
    as_json = await (await client.get("/studies/tune/trials.json")).json()
    assert as_json == json.loads(json.dumps(expected))


async def test_an_unknown_study_is_a_not_found_page_not_an_empty_file(console: Any) -> None:
    client, _ = await console()
    assert (await client.get("/studies/other/trials.csv")).status == 404
    assert (await client.get("/studies/other")).status == 404


async def test_the_studies_list_shows_status_best_and_trials_done_of_max(console: Any) -> None:
    client, calls = await console()
    page = await (await client.get("/studies", cookies={"shipyard_project": "mnist"})).text()
    row = re.search(r'<tr data-study="tune">(.*?)</tr>', page, re.S)[1]  # type: ignore[index]
    assert "Running" in row and "0.9" in row and "5 / 8" in row and 'aria-label="hyperparameter study"' in row
    assert calls.asked("ListStudies")[0].project == "mnist"


def tuning_form(tuning: bytes) -> FormData:
    form = FormData()
    form.add_field("name", "tune")
    form.add_field("command", "python train.py")
    form.add_field("keep_trial_outputs", "on")
    form.add_field("config_file", b"print(1)", filename="train.py")
    form.add_field("tuning_file", tuning, filename="tuning.yaml", content_type="application/yaml")
    return form


async def test_the_run_forms_tuning_file_is_sent_as_the_study(console: Any) -> None:
    client, calls = await console(answers={
        "/shipyard.run.v1.RunService/SubmitRun": lambda m: runs_pb2.Run(name="tune")})
    made = await client.post("/runs/new", data=tuning_form(b"maxTrialCount: 6\n"), allow_redirects=False)
    assert (made.status, made.headers["Location"]) == (303, "/runs/tune")
    [sent] = calls.asked("SubmitRun")
    assert (sent.tuning, sent.config_file) == (b"maxTrialCount: 6\n", b"print(1)") and sent.keep_trial_outputs


async def test_a_configuration_file_alone_is_sent_as_bytes(console: Any) -> None:
    """aiohttp reads an upload as a bytearray, which a protobuf bytes field refuses (a 500 before)."""
    client, calls = await console(answers={
        "/shipyard.run.v1.RunService/SubmitRun": lambda m: runs_pb2.Run(name="plain")})
    form = FormData()
    form.add_field("name", "plain")
    form.add_field("command", "python train.py")
    form.add_field("config_file", b"lr: 0.1\n", filename="config.yaml")
    made = await client.post("/runs/new", data=form, allow_redirects=False)
    assert made.status == 303
    [sent] = calls.asked("SubmitRun")
    assert (sent.config_file, sent.tuning, sent.keep_trial_outputs) == (b"lr: 0.1\n", b"", False)


async def test_a_refused_tuning_file_shows_the_error_at_the_upload(console: Any) -> None:
    def refuse(message: Message) -> Message:
        field = "tuning.parameters[0].feasibleSpace.min"
        raise ConsoleError(grpc.StatusCode.INVALID_ARGUMENT, f"{field}: must not be greater than max",
                           field=field)

    client, _ = await console(answers={"/shipyard.run.v1.RunService/SubmitRun": refuse})
    refused = await client.post("/runs/new", data=tuning_form(b"bad"), allow_redirects=False)
    page = await refused.text()
    assert refused.status == 400
    error = re.search(r'<p class="error" id="f-tuning_file-error">(.*?)</p>', page, re.S)
    assert error and "must not be greater than max" in error[1] and "tuning.yaml" in error[1]
    assert re.search(r'id="f-tuning_file"[^>]*aria-invalid="true"', page)
    assert '<option value="trial"' not in page and "<option >trial" not in page and ">trial<" not in page


def run(name: str, kind: int = runs_pb2.RUN_KIND_TRAINING, **fields: Any) -> runs_pb2.Run:
    return runs_pb2.Run(name=name, kind=kind, **fields)


async def test_the_runs_list_marks_studies_and_asks_run_svc_to_leave_trials_out_unless_asked(
        console: Any) -> None:
    trials = [run(f"tune-t{n:03d}", runs_pb2.RUN_KIND_TRIAL, study="tune") for n in range(50)]
    stored = [*trials, run("tune", tuning=True), run("train")]

    def list_runs(message: Message) -> Message:  # run-svc leaves trials out when asked to, in one page
        asked = cast(runs_pb2.ListRunsRequest, message)
        found = [r for r in stored if not (asked.exclude_trials and r.kind == runs_pb2.RUN_KIND_TRIAL)]
        return runs_pb2.ListRunsResponse(runs=found[:asked.page_size], next_page_token="more")

    client, calls = await console(answers={"/shipyard.run.v1.RunService/ListRuns": list_runs})
    page = await (await client.get("/runs")).text()
    assert re.findall(r'<tr data-run="([^"]+)"', page) == ["tune", "train"]
    row = re.search(r'<tr data-run="tune">(.*?)</tr>', page, re.S)[1]  # type: ignore[index]
    assert '<a class="study-icon" href="/studies/tune"' in row
    assert "<title>hyperparameter study</title>" in row
    plain = re.search(r'<tr data-run="train">(.*?)</tr>', page, re.S)[1]  # type: ignore[index]
    assert "data-study-icon" not in plain
    (hidden,) = calls.asked("ListRuns")  # one page asked for: no reading on past trials
    assert hidden.exclude_trials
    shown = await (await client.get("/runs?trials=on")).text()
    assert len(re.findall(r'<tr data-run="tune-t', shown)) == 50
    assert 'of <a href="/studies/tune">tune</a>' in shown  # a trial links back to its study
    await client.get("/runs?kind=trial")
    assert [m.exclude_trials for m in calls.asked("ListRuns")] == [True, False, False]


async def test_a_trial_and_a_study_run_link_to_the_study(console: Any) -> None:
    runs = {"tune-t001": run("tune-t001", runs_pb2.RUN_KIND_TRIAL, study="tune"),
            "tune": run("tune", tuning=True)}
    client, _ = await console(answers={
        "/shipyard.run.v1.RunService/GetRun": lambda m: runs[cast(runs_pb2.GetRunRequest, m).name]})
    trial_page = await (await client.get("/runs/tune-t001")).text()
    assert '<a class="button" id="study-link" href="/studies/tune">Study tune</a>' in trial_page
    study_page = await (await client.get("/runs/tune")).text()
    assert '<a class="button" id="study-link" href="/studies/tune">Study</a>' in study_page


def test_the_graphs_best_so_far_follows_the_objectives_direction() -> None:
    minimized = study()
    minimized.objective_type = "minimize"
    graph = trials_graph(minimized, TRIALS)
    assert graph["best"] == [0.7, 0.7, 0.7, 0.7, 0.7, 0.7]
    succeeded = next(s for s in graph["states"] if s["state"] == "Succeeded")
    assert succeeded["values"] == [0.7, 0.9, None, 0.8, None, None]
    assert [s["state"] for s in graph["states"]] == ["Succeeded", "Running", "Failed", "MetricsUnavailable"]


def test_parallel_coordinates_place_list_values_evenly_and_log_parameters_on_a_log_scale() -> None:
    chart = parallel_coordinates(study(), PARAMETERS, TRIALS)
    assert chart is not None
    lr, optimizer, _ = chart.axes
    assert [t.label for t in optimizer.ticks] == ["sgd", "adam", "ftrl"]
    top, bottom = chart.top, chart.bottom
    assert [t.y for t in optimizer.ticks] == [bottom, (top + bottom) / 2, top]
    assert [t.label for t in lr.ticks] == ["0.001", "0.1"]
    ys = {line.trial: [float(p.split(",")[1]) for p in line.points.split()] for line in chart.lines}
    assert ys["tune-t002"][0] == (top + bottom) / 2  # 0.01 lies halfway between 0.001 and 0.1 on a log scale
    assert ys["tune-t002"][2] == top and ys["tune-t001"][2] == bottom  # the best objective highest
    assert chart.lines[-1].best and chart.lines[-1].trial == "tune-t002"  # drawn last, over the others
    assert chart.lines[-1].values == ("0.01", "adam", "0.9")
    assert parallel_coordinates(study(), PARAMETERS, TRIALS[2:3]) is None  # nothing succeeded yet


# ---- a study of thousands of trials: what a refresh reads ----------------------------------------------


def big_study(trials: list[pb.Trial], revision: int = 1) -> pb.Study:
    shown = study()
    succeeded = sum(t.state == pb.TRIAL_STATE_SUCCEEDED for t in trials)
    shown.trials, shown.trials_revision = len(trials), revision
    shown.counts.CopyFrom(pb.TrialCounts(succeeded=succeeded, running=len(trials) - succeeded))
    return shown


def paged_answers(current: Callable[[], pb.Study], trials: Callable[[], list[pb.Trial]]) -> dict[str, Answer]:
    """StudyService over ``trials`` as run-svc pages them (page_size, page_token: the offset)."""
    def list_trials(message: Message) -> Message:
        asked = cast(pb.ListTrialsRequest, message)
        start = int(asked.page_token or 0)
        found = sorted(trials(), key=lambda t: t.number)
        page = found[start:start + asked.page_size]
        more = start + asked.page_size < len(found)
        token = str(start + asked.page_size) if more else ""
        return pb.ListTrialsResponse(trials=page, next_page_token=token)

    service = "/shipyard.run.v1.StudyService"
    return {f"{service}/GetStudy": lambda m: current(), f"{service}/ListTrials": list_trials}


def many_trials(count: int, running: int = 5) -> list[pb.Trial]:
    return [trial(n, accuracy=0.5 + (n % 397) / 1000) if n <= count - running
            else trial(n, pb.TRIAL_STATE_RUNNING, accuracy=0.4) for n in range(1, count + 1)]


def refresh_headers(page: str) -> dict[str, str]:
    """The versions the page's live part sends back with each refresh (its hx-headers)."""
    found = re.search(r"<div id=\"study-body\" [^>]*hx-headers='([^']*)'", page)
    assert found, "the live part carries no versions"
    return cast(dict[str, str], json.loads(html.unescape(found[1])))


def read_pages(calls: FakeCalls) -> list[tuple[int, str]]:
    return [(m.page_size, m.page_token) for m in calls.asked("ListTrials")]


async def test_a_refresh_of_an_unchanged_study_reads_no_trial_and_swaps_nothing(console: Any) -> None:
    trials = many_trials(3000)
    client, calls = await console(answers=paged_answers(lambda: big_study(trials), lambda: trials))
    page = await (await client.get("/studies/tune")).text()
    assert read_pages(calls) == [(1000, ""), (1000, "1000"), (1000, "2000"), (50, "")]  # the first render
    calls.requests.clear()
    again = await client.get("/studies/tune?fragment=body", headers=refresh_headers(page))
    assert again.status == 204 and await again.text() == ""  # htmx swaps nothing: the page keeps its view
    assert read_pages(calls) == [] and len(calls.asked("GetStudy")) == 1


async def test_a_running_trials_metrics_refresh_the_table_alone_in_a_study_of_thousands(console: Any) -> None:
    trials = many_trials(3000)
    shown = [big_study(trials)]
    client, calls = await console(answers=paged_answers(lambda: shown[0], lambda: trials))
    page = await (await client.get("/studies/tune")).text()
    headers = refresh_headers(page)
    shown[0] = big_study(trials, revision=2)  # a running trial logged a metric: counts and best unchanged
    calls.requests.clear()
    fresh = await (await client.get("/studies/tune?fragment=body", headers=headers)).text()
    assert read_pages(calls) == [(50, "")]  # the table's page only, not every trial
    assert '<div id="study-results" hx-preserve="true"></div>' in fresh  # graph, chart and best kept as shown
    assert "trials-graph-data" not in fresh
    assert re.search(r"<h2>Trials <span class=\"muted\">3000</span>", fresh)
    assert len(re.findall(r'<tr data-trial="', fresh)) == 50

    trials[-1] = trial(3000, accuracy=0.99)  # a trial ended: the graph, the chart and the best change
    shown[0] = big_study(trials, revision=3)
    calls.requests.clear()
    ended = await (await client.get("/studies/tune?fragment=body", headers=refresh_headers(fresh))).text()
    assert read_pages(calls) == [(1000, ""), (1000, "1000"), (1000, "2000"), (50, "")]
    assert "hx-preserve" not in ended
    best = re.search(r'<table id="best-trials">(.*?)</table>', ended, re.S)[1]  # type: ignore[index]
    assert re.findall(r'<tr data-trial="([^"]+)"', best)[0] == "tune-t3000"


async def test_a_small_study_shows_every_change_of_a_running_trial_at_once(console: Any) -> None:
    trials = many_trials(6, running=1)
    shown = [big_study(trials)]
    client, calls = await console(answers=paged_answers(lambda: shown[0], lambda: trials))
    headers = refresh_headers(await (await client.get("/studies/tune")).text())
    trials[-1] = trial(6, pb.TRIAL_STATE_RUNNING, accuracy=0.45)  # its latest accuracy moved
    shown[0] = big_study(trials, revision=2)
    calls.requests.clear()
    fresh = await (await client.get("/studies/tune?fragment=body", headers=headers)).text()
    assert read_pages(calls) == [(1000, ""), (50, "")]  # as before: one page holds every trial
    graph = json.loads(re.search(r'id="trials-graph-data">(.*?)</script>', fresh, re.S)[1])  # type: ignore[index]
    assert next(s for s in graph["states"] if s["state"] == "Running")["values"][-1] == 0.45


async def test_sorting_the_table_keeps_the_graph_without_reading_every_trial(console: Any) -> None:
    trials = many_trials(6, running=1)
    client, calls = await console(answers=paged_answers(lambda: big_study(trials), lambda: trials))
    headers = refresh_headers(await (await client.get("/studies/tune")).text())
    calls.requests.clear()
    response = await client.get("/studies/tune?fragment=body&sort=objective", headers=headers)
    assert response.status == 200  # another ordering: not the version the page showed
    assert read_pages(calls) == [(50, "")]
    assert 'id="study-results" hx-preserve="true"' in await response.text()


def test_the_parallel_coordinates_of_thousands_of_trials_draw_the_best_and_say_so() -> None:
    trials = many_trials(3000, running=0)
    chart = parallel_coordinates(study(), PARAMETERS, trials, most=500)
    assert chart is not None and chart.limited and (len(chart.lines), chart.succeeded) == (500, 3000)
    drawn = {line.trial for line in chart.lines}
    best = sorted(trials, key=lambda t: (-t.objective, t.number))[:500]
    assert drawn == {t.name for t in best}
    small = parallel_coordinates(study(), PARAMETERS, TRIALS, most=500)
    assert small is not None and not small.limited and len(small.lines) == 3

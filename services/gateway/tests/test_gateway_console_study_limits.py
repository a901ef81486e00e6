"""The console's "Edit limits" form of a study without a stack: offered to its owner and operators only, it
sends only the changed limits with their field mask, shows the resume hint when raising maxTrialCount resumes
the study, and shows refusals inline by the field they name."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any, cast

import grpc
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from google.protobuf.message import Message
from shipyard_gateway.entrypoints.console.calls import TOKEN_COOKIE, ConsoleError
from shipyard_gateway.entrypoints.console.edge import Console
from shipyard_gateway.entrypoints.console.studies import StudyPages
from shipyard_gateway.entrypoints.console.study_limits import StudyLimitPages
from test_gateway_console_studies import TRIALS, Answer, FakeCalls, studies_answers, study

from shipyard.contracts.run.v1 import studies_pb2 as pb

UPDATE = "/shipyard.run.v1.StudyService/UpdateStudy"
Client = TestClient[web.Request, web.Application]


def succeeded(policy: str) -> pb.Study:
    shown = study(pb.STUDY_STATUS_SUCCEEDED)
    shown.reason, shown.resume_policy, shown.trials, shown.max_trial_count = (
        "ExperimentMaxTrialsReached", policy, 8, 8)
    return shown


@pytest.fixture
async def console() -> AsyncIterator[Callable[..., Any]]:
    clients: list[Client] = []

    async def open_(user: str = "ada", roles: tuple[str, ...] = ("data-scientist",),
                    answers: dict[str, Answer] | None = None) -> tuple[Client, FakeCalls]:
        pages = Console(cast(Any, None), cast(Any, None), cast(Any, None))
        calls = FakeCalls(user, list(roles), answers or studies_answers(study(), TRIALS))
        pages.calls = cast(Any, calls)
        app = web.Application()
        StudyPages(pages).add_routes(app)
        StudyLimitPages(pages).add_routes(app)
        client = TestClient(TestServer(app), cookies={TOKEN_COOKIE: "session"})
        await client.start_server()
        clients.append(client)
        return client, calls

    yield open_
    for client in clients:
        await client.close()


@pytest.mark.parametrize(("user", "roles", "offered"), [
    ("ada", ("data-scientist",), True),          # the owner
    ("bob", ("data-scientist",), False),         # not its owner: run-svc would refuse
    ("root", ("operator",), True),
    ("ada", ("production-engineer",), False),    # may not call UpdateStudy at all
])
async def test_edit_limits_is_offered_to_who_may_change_them(console: Any, user: str, roles: tuple[str, ...],
                                                             offered: bool) -> None:
    client, _ = await console(user, roles)
    page = await (await client.get("/studies/tune")).text()
    assert ('id="edit-limits"' in page) is offered
    form = await client.get("/studies/tune/limits")
    assert (form.status == 200) is offered
    if not offered:
        assert form.status == 403
        posted = await client.post("/studies/tune/limits", data={"max_trial_count": "9"},
                                   allow_redirects=False)
        assert posted.status == 403


async def test_the_form_sends_only_the_changed_limits_and_goes_back_to_the_study(console: Any) -> None:
    client, calls = await console()
    page = await (await client.get("/studies/tune/limits")).text()
    assert 'value="2"' in page and 'value="8"' in page and 'value="3"' in page
    assert 'id="resume-hint"' not in page
    saved = await client.post("/studies/tune/limits", allow_redirects=False,
                              data={"parallel_trial_count": "4", "max_trial_count": "8",
                                    "max_failed_trial_count": "3"})
    assert (saved.status, saved.headers["Location"]) == (303, "/studies/tune")
    (request,) = calls.asked("UpdateStudy")
    assert (request.name, request.parallel_trial_count, list(request.update_mask.paths)) == (
        "tune", 4, ["parallel_trial_count"])
    unchanged = await client.post("/studies/tune/limits", allow_redirects=False,
                                  data={"parallel_trial_count": "2", "max_trial_count": "8"})
    assert unchanged.status == 303 and len(calls.asked("UpdateStudy")) == 1


@pytest.mark.parametrize(("policy", "hint"), [("LongRunning", True), ("FromVolume", True), ("Never", False)])
async def test_a_succeeded_study_shows_the_resume_hint_when_its_policy_allows(console: Any, policy: str,
                                                                            hint: bool) -> None:
    client, _ = await console(answers=studies_answers(succeeded(policy), TRIALS))
    page = await (await client.get("/studies/tune/limits")).text()
    assert ('id="resume-hint"' in page) is hint
    assert ('id="ended-note"' in page) is not hint
    if hint:
        assert f"resumePolicy is {policy}" in page and "raise Max trials above 8" in page


async def test_a_refusal_shows_inline_by_the_field_it_names(console: Any) -> None:
    def refuse(message: Message) -> Message:
        raise ConsoleError(grpc.StatusCode.INVALID_ARGUMENT, "max_trial_count: must be greater than the 8 "
                           "trials started so far, not 7", field="max_trial_count")

    def precondition(message: Message) -> Message:
        raise ConsoleError(grpc.StatusCode.FAILED_PRECONDITION, "study 'tune' has ended: its resumePolicy is "
                           "Never")

    client, _ = await console(answers={**studies_answers(study(), TRIALS), UPDATE: refuse})
    refused = await client.post("/studies/tune/limits", data={"max_trial_count": "7"})
    page = await refused.text()
    assert refused.status == 400
    assert 'id="f-max_trial_count-error"' in page and "must be greater than the 8" in page
    assert 'value="7"' in page  # what was typed stays
    typo = await client.post("/studies/tune/limits", data={"parallel_trial_count": "many"})
    assert typo.status == 400 and 'id="f-parallel_trial_count-error"' in await typo.text()
    client, _ = await console(answers={**studies_answers(succeeded("Never"), TRIALS), UPDATE: precondition})
    ended = await client.post("/studies/tune/limits", data={"max_trial_count": "12"})
    assert ended.status == 400 and "resumePolicy is" in await ended.text()

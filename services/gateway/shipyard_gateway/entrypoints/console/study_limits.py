"""A study's "Edit limits" form: its parallel, total and failed trial counts (Katib's editable fields), for
its owner and operators; raising the total resumes a Succeeded study whose resumePolicy allows it."""

from __future__ import annotations

import grpc
from aiohttp import web
from google.protobuf.field_mask_pb2 import FieldMask

from shipyard.contracts.run.v1 import studies_pb2 as pb
from shipyard_gateway.domain.policy import POLICY
from shipyard_gateway.entrypoints.console.calls import CALLER, ConsoleError
from shipyard_gateway.entrypoints.console.edge import Console

SERVICE = "/shipyard.run.v1.StudyService"
UPDATE = f"{SERVICE}/UpdateStudy"
LIMITS = ("parallel_trial_count", "max_trial_count", "max_failed_trial_count")
RESUMABLE = ("LongRunning", "FromVolume")
ENDED = (pb.STUDY_STATUS_SUCCEEDED, pb.STUDY_STATUS_FAILED, pb.STUDY_STATUS_STOPPED)


def may_edit_limits(request: web.Request, study: pb.Study) -> bool:
    """Whether the signed-in user may change the study's limits: their roles may call UpdateStudy, and it is
    theirs or they are an operator (run-svc's own rule, as for stopping it)."""
    caller = request[CALLER]
    allowed = bool(caller.roles & POLICY.get(UPDATE, frozenset()))
    return allowed and (caller.user == study.owner or caller.is_operator)


def resumable(study: pb.Study) -> bool:
    """Whether raising maxTrialCount resumes the study: it Succeeded by reaching maxTrialCount and its
    resumePolicy is LongRunning or FromVolume."""
    return (study.status == pb.STUDY_STATUS_SUCCEEDED and study.reason == "ExperimentMaxTrialsReached"
            and study.resume_policy in RESUMABLE)


def form_values(study: pb.Study) -> dict[str, str]:
    """The form's fields as the study holds them ("": no limit)."""
    return {"parallel_trial_count": str(study.parallel_trial_count),
            "max_trial_count": str(study.max_trial_count) if study.max_trial_count else "",
            "max_failed_trial_count": str(study.max_failed_trial_count)
            if study.max_failed_trial_count >= 0 else ""}


def changed_limits(current: dict[str, str], posted: dict[str, str]) -> dict[str, int]:
    """The limits the form changed, as numbers; a field left empty or as it was is not changed."""
    changes: dict[str, int] = {}
    for name in LIMITS:
        text = posted.get(name, "").strip()
        if not text or text == current[name]:
            continue
        try:
            changes[name] = int(text)
        except ValueError:
            raise ConsoleError.invalid(name, f"must be a whole number, not {text!r}") from None
    return changes


class StudyLimitPages:
    """``/studies/{name}/limits``."""

    def __init__(self, console: Console) -> None:
        self._console = console

    def add_routes(self, app: web.Application) -> None:
        guarded = self._console.guarded
        app.router.add_get("/studies/{name}/limits", guarded(self.form))
        app.router.add_post("/studies/{name}/limits", guarded(self.edit))

    async def form(self, request: web.Request) -> web.Response:
        study = await self._get(request)
        return await self._form(request, study, form_values(study), None)

    async def edit(self, request: web.Request) -> web.Response:
        """Change what the form changed (nothing: back to the study's page); a refusal shows on the form."""
        study = await self._get(request)
        form = await request.post()
        posted = {key: str(value) for key, value in form.items() if isinstance(value, str)}
        try:
            changes = changed_limits(form_values(study), posted)
            if changes:
                await self._console.call(request, UPDATE, pb.UpdateStudyRequest(
                    name=study.name, update_mask=FieldMask(paths=list(changes)), **changes), pb.Study)
        except ConsoleError as exc:
            if exc.signed_out:
                raise
            return await self._form(request, study, posted, exc)
        raise web.HTTPSeeOther(f"/studies/{study.name}")

    async def _get(self, request: web.Request) -> pb.Study:
        study = await self._console.call(request, f"{SERVICE}/GetStudy",
                                         pb.GetStudyRequest(name=request.match_info["name"]), pb.Study)
        if not may_edit_limits(request, study):
            raise ConsoleError(grpc.StatusCode.PERMISSION_DENIED,
                               f"UpdateStudy: study {study.name!r} belongs to {study.owner!r}; only its "
                               "owner or an operator changes its limits")
        return study

    async def _form(self, request: web.Request, study: pb.Study, values: dict[str, str],
                    error: ConsoleError | None) -> web.Response:
        field = error.field.removeprefix("study.") if error else ""
        return await self._console.page(
            request, "studies/limits.html.j2", "studies", status=400 if error else 200, study=study,
            values=values, resumable=resumable(study),
            ended=study.status in ENDED,
            error=error.message if error else "", error_field=field if field in LIMITS else "")

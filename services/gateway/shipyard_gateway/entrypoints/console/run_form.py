""" "+ Run": the guide's Basic, Repos and Configuration tabs (one form, three sections that the
page shows as tabs), optionally from a template; SubmitRun as the signed-in user."""

from __future__ import annotations

from typing import Any

from aiohttp import BodyPartReader, web

from shipyard.contracts.repo.v1 import images_pb2
from shipyard.contracts.run.v1 import runs_pb2 as pb
from shipyard_gateway.entrypoints.console.calls import ConsoleError, selected_project
from shipyard_gateway.entrypoints.console.clusters import KIND_NAMES, list_clusters, viewer_logins
from shipyard_gateway.entrypoints.console.edge import Console
from shipyard_gateway.entrypoints.console.projects import field_of
from shipyard_gateway.entrypoints.console.runs import KINDS, SERVICE

INPUT_ROWS = 3
OUTPUT_ROWS = 2
CONFIG_MAX_BYTES = 1 << 20
FRAMEWORKS = ("", "sklearn", "pytorch", "tensorflow", "xgboost", "custom")
IMAGES = "/shipyard.repo.v1.ImageService/ListImages"
FROM_CODE_REPO = "build-from-code-repo"  # the image a run names to build its code repo's first
FILE_FIELDS = ("config_file", "tuning_file")
SUBMITTED_KINDS = [k for k in KINDS if k != "trial"]  # a study starts its trials; nobody submits one


def _invalid(field: str, problem: str) -> ConsoleError:
    return ConsoleError.invalid(field, problem)


def hyperparameters(text: str) -> dict[str, str]:
    """``name=value`` lines (or comma-separated) as a map; ConsoleError naming a bad line."""
    found: dict[str, str] = {}
    for number, line in enumerate(text.replace(",", "\n").splitlines(), start=1):
        if not line.strip():
            continue
        name, sep, value = line.partition("=")
        if not sep or not name.strip():
            raise _invalid("run.hyperparameters", f"line {number}: write name=value (got {line.strip()!r})")
        found[name.strip()] = value.strip()
    return found


def _whole(values: dict[str, str], name: str) -> int:
    raw = values.get(name, "").strip()
    try:
        return int(raw or "0")
    except ValueError:
        raise _invalid(f"run.{name}", f"must be a whole number (got {raw!r})") from None


def run_from(values: dict[str, str], project: str) -> pb.Run:
    """The run the form describes."""
    kind = values.get("kind", "training")
    if kind not in KINDS:
        raise _invalid("run.kind", f"must be one of {', '.join(KINDS)}")
    run = pb.Run(
        name=values.get("name", "").strip(),
        description=values.get("description", ""),
        project=project,
        kind=f"RUN_KIND_{kind.upper()}",
        command=values.get("command", "").strip(),
        tags=[t.strip() for t in values.get("tags", "").split(",") if t.strip()],
        framework=values.get("framework", ""),
        framework_version=values.get("framework_version", "").strip(),
        image=values.get("image", "").strip(),
        code=values.get("code", "").strip(),
        commit=values.get("commit", "").strip(),
        gpus=_whole(values, "gpus"),
        start_with_available=values.get("start_with_available") == "on",
        priority=_whole(values, "priority"),
        hyperparameters=hyperparameters(values.get("hyperparameters", "")),
        cluster=values.get("cluster", "").strip(),
        time_limit=values.get("time_limit", "").strip(),
        account=values.get("account", "").strip(),
    )
    for row in range(INPUT_ROWS):
        repo = values.get(f"input{row}.repo", "").strip()
        if repo:
            run.inputs.append(
                pb.RunInput(
                    repo_kind=values.get(f"input{row}.kind", "dataset"),
                    repo=repo,
                    version=_whole(values, f"input{row}.version"),
                    mount_path=values.get(f"input{row}.mount_path", "").strip(),
                )
            )
    for row in range(OUTPUT_ROWS):
        repo = values.get(f"output{row}.repo", "").strip()
        if repo:
            run.outputs.append(
                pb.RunOutputTarget(
                    repo_kind=values.get(f"output{row}.kind", "model"),
                    repo=repo,
                    mount_path=values.get(f"output{row}.mount_path", "").strip(),
                )
            )
    return run


class RunFormPages:
    """``/runs/new`` (also ``?template=NAME``)."""

    def __init__(self, console: Console) -> None:
        self._console = console

    def add_routes(self, app: web.Application) -> None:
        guarded = self._console.guarded
        app.router.add_get("/runs/new", guarded(self.new))
        app.router.add_post("/runs/new", guarded(self.submit))

    async def new(self, request: web.Request) -> web.Response:
        values: dict[str, str] = {"kind": request.query.get("kind", "training"),
                                  "cluster": request.query.get("cluster", "")}
        template = request.query.get("template", "")
        if template:
            found = await self._console.call(
                request, f"{SERVICE}/GetTemplate", pb.GetTemplateRequest(name=template), pb.RunTemplate
            )
            values = _values_of(found.run)
            values["template"] = template
        return await self._form(request, values, None)

    async def submit(self, request: web.Request) -> web.Response:
        values, files = await _read(request)
        try:
            run = run_from(values, selected_project(request))
            made = await self._console.call(
                request,
                f"{SERVICE}/SubmitRun",
                submit_request(run, values, files),
                pb.Run,
            )
        except ConsoleError as exc:
            if exc.signed_out:
                raise
            return await self._form(request, values, exc)
        raise web.HTTPSeeOther(f"/runs/{made.name}")

    async def _form(
        self, request: web.Request, values: dict[str, Any], error: ConsoleError | None
    ) -> web.Response:
        templates = await self._console.call(
            request, f"{SERVICE}/ListTemplates", pb.ListTemplatesRequest(), pb.ListTemplatesResponse
        )
        images = await self._console.call(
            request, IMAGES, images_pb2.ListImagesRequest(), images_pb2.ListImagesResponse
        )
        return await self._console.page(
            request,
            "runs/form.html.j2",
            "runs",
            status=400 if error else 200,
            values=values,
            kinds=SUBMITTED_KINDS,
            frameworks=FRAMEWORKS,
            templates=templates.templates,
            images=[*(i.name for i in images.images), FROM_CODE_REPO],
            inputs=range(INPUT_ROWS),
            outputs=range(OUTPUT_ROWS),
            clusters=await list_clusters(self._console, request),
            logins=await viewer_logins(self._console, request),
            kind_names=KIND_NAMES,
            error=error.message if error else "",
            error_field=upload_field(error) if error else "",
        )


def submit_request(run: pb.Run, values: dict[str, str], files: dict[str, bytes]) -> pb.SubmitRunRequest:
    """SubmitRun for the form: with a tuning file, the run is a hyperparameter study."""
    return pb.SubmitRunRequest(run=run, config_file=files.get("config_file", b""),
                               template=values.get("template", ""), tuning=files.get("tuning_file", b""),
                               keep_trial_outputs=values.get("keep_trial_outputs") == "on")


async def _read(request: web.Request) -> tuple[dict[str, str], dict[str, bytes]]:
    """The form's fields and its files by field name (the configuration file, the tuning file: each at most
    CONFIG_MAX_BYTES)."""
    values: dict[str, str] = {}
    files: dict[str, bytes] = {}
    reader = await request.multipart()
    while (part := await reader.next()) is not None:
        if not isinstance(part, BodyPartReader):
            continue
        if part.filename is None:
            values[part.name or ""] = await part.text()
        elif part.filename and part.name in FILE_FIELDS:
            data = await part.read()
            if len(data) > CONFIG_MAX_BYTES:
                raise web.HTTPRequestEntityTooLarge(max_size=CONFIG_MAX_BYTES, actual_size=len(data))
            files[part.name] = bytes(data)
            values[f"{part.name}_name"] = part.filename
    return values, files


def upload_field(error: ConsoleError) -> str:
    """The form field a refusal names; the tuning file's own fields (``tuning.parameters[0].…``) are the
    tuning upload's."""
    field = field_of(error)
    return "tuning_file" if field == "tuning" or field.startswith("tuning.") else field


def _values_of(run: pb.Run) -> dict[str, str]:
    """A template's run as the form's values."""
    values = {
        "kind": pb.RunKind.Name(run.kind).removeprefix("RUN_KIND_").lower() if run.kind else "training",
        "command": run.command,
        "description": run.description,
        "tags": ", ".join(run.tags),
        "framework": run.framework,
        "framework_version": run.framework_version,
        "image": run.image,
        "code": run.code,
        "commit": run.commit,
        "gpus": str(run.gpus or ""),
        "cluster": run.cluster,
        "time_limit": run.time_limit,
        "account": run.account,
        "hyperparameters": "\n".join(f"{k}={v}" for k, v in sorted(run.hyperparameters.items())),
    }
    for row, given in enumerate(run.inputs[:INPUT_ROWS]):
        values.update(
            {
                f"input{row}.kind": given.repo_kind,
                f"input{row}.repo": given.repo,
                f"input{row}.version": str(given.version or ""),
                f"input{row}.mount_path": given.mount_path,
            }
        )
    for row, target in enumerate(run.outputs[:OUTPUT_ROWS]):
        values.update(
            {
                f"output{row}.kind": target.repo_kind,
                f"output{row}.repo": target.repo,
                f"output{row}.mount_path": target.mount_path,
            }
        )
    return values

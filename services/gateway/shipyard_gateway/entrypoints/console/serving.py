"""Test inferences: the list, "+ Test Inference", details with replicas and a form to send a test
request, delete. The serving spec form is shared with publishing and deploying (catalog.py)."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web
from google.protobuf.message import Message

from shipyard.contracts.run.v1 import clusters_pb2 as cpb
from shipyard.contracts.serving.v1 import serving_pb2 as pb
from shipyard_gateway.entrypoints.console.calls import ConsoleError, selected_project
from shipyard_gateway.entrypoints.console.clusters import list_clusters
from shipyard_gateway.entrypoints.console.edge import Console
from shipyard_gateway.entrypoints.console.projects import field_of

SERVICE = "/shipyard.serving.v1.ServingService"
PAGE_SIZE = 50
FRAMEWORKS = ("auto", "sklearn", "onnx", "torchscript", "custom")
SPEC_NUMBERS = ("gpus", "min_replicas", "max_replicas", "max_concurrency")
SPEC_TEXTS = ("serving_image", "framework", "predictor", "cpu", "memory")
EXAMPLE_REQUEST = {
    "inputs": [{"name": "input-0", "shape": [1, 4], "datatype": "FP32", "data": [5.1, 3.5, 1.4, 0.2]}]
}


def serving_status(message: Message) -> str:
    """``running``, ``failed``, … of an inference or deployment."""
    status: int = getattr(message, "status")  # noqa: B009 - both messages have it
    return pb.ServingStatus.Name(status).removeprefix("SERVING_STATUS_").lower()


def number_field(form: Any, name: str) -> int:
    """A whole number typed into the form ("" = 0); ConsoleError naming the field otherwise."""
    text = str(form.get(name, "")).strip()
    try:
        return int(text or "0")
    except ValueError:
        raise ConsoleError.invalid(f"spec.{name}", "must be a whole number") from None


def spec_from(form: Any) -> pb.ServingSpec:
    """The serving spec typed into the form (empty fields: the defaults)."""
    spec = pb.ServingSpec(
        transformer=pb.Transformer(
            code=str(form.get("transformer_code", "")).strip(),
            commit=str(form.get("transformer_commit", "")).strip(),
            script=str(form.get("transformer_script", "")).strip(),
            image=str(form.get("transformer_image", "")).strip(),
        )
    )
    for name in SPEC_TEXTS:
        setattr(spec, name, str(form.get(name, "")).strip())
    for name in SPEC_NUMBERS:
        setattr(spec, name, number_field(form, name))
    return spec


async def serving_clusters(console: Console, request: web.Request) -> list[cpb.Cluster]:
    """The clusters models may be served on: the Kubernetes ones (their KServe)."""
    return [c for c in await list_clusters(console, request) if c.kind == cpb.CLUSTER_KIND_KUBERNETES]


def model_ref(text: str) -> pb.ModelRef:
    """``mnist@3`` (or ``mnist``: the latest) as a model reference."""
    name, _, version = text.strip().partition("@")
    if version and not version.isdigit():
        raise ConsoleError.invalid("model", f"write it as name@version (got {text!r})")
    return pb.ModelRef(model=name, version=int(version or "0"))


class InferencePages:
    """``/inferences…``."""

    def __init__(self, console: Console) -> None:
        self._console = console

    def add_routes(self, app: web.Application) -> None:
        guarded = self._console.guarded
        app.router.add_get("/inferences", guarded(self.list))
        app.router.add_get("/inferences/new", guarded(self.new))
        app.router.add_post("/inferences/new", guarded(self.create))
        app.router.add_get("/inferences/{name}", guarded(self.detail))
        app.router.add_post("/inferences/{name}/delete", guarded(self.delete))

    async def list(self, request: web.Request) -> web.Response:
        page = await self._console.call(
            request,
            f"{SERVICE}/ListInferences",
            pb.ListInferencesRequest(
                project=selected_project(request),
                page_size=PAGE_SIZE,
                page_token=request.query.get("page", ""),
            ),
            pb.ListInferencesResponse,
        )
        return await self._console.page(
            request,
            "serving/inferences.html.j2",
            "inferences",
            items=page.inferences,
            next_page=page.next_page_token,
            serving_status=serving_status,
        )

    async def new(self, request: web.Request) -> web.Response:
        return await self._form(request, {"model": request.query.get("model", "")}, None)

    async def create(self, request: web.Request) -> web.Response:
        form = await request.post()
        try:
            spec = spec_from(form)
            inference = pb.Inference(
                name=str(form.get("name", "")).strip(),
                description=str(form.get("description", "")),
                project=selected_project(request),
                model=model_ref(str(form.get("model", ""))),
                spec=spec,
                cluster=str(form.get("cluster", "")).strip(),
            )
            made = await self._console.call(
                request,
                f"{SERVICE}/CreateInference",
                pb.CreateInferenceRequest(inference=inference),
                pb.Inference,
            )
        except ConsoleError as exc:
            if exc.signed_out:
                raise
            return await self._form(request, dict(form), exc)
        raise web.HTTPSeeOther(f"/inferences/{made.name}")

    async def detail(self, request: web.Request) -> web.Response:
        item = await self._console.call(
            request,
            f"{SERVICE}/GetInference",
            pb.GetInferenceRequest(name=request.match_info["name"]),
            pb.Inference,
        )
        context: dict[str, Any] = {
            "item": item,
            "state": serving_status(item),
            "example": json.dumps(EXAMPLE_REQUEST, indent=1),
        }
        if request.query.get("fragment") == "summary":
            return self._console.fragment("serving/inference_summary.html.j2", **context)
        return await self._console.page(request, "serving/inference.html.j2", "inferences", **context)

    async def delete(self, request: web.Request) -> web.Response:
        await self._console.call(
            request,
            f"{SERVICE}/DeleteInference",
            pb.DeleteInferenceRequest(name=request.match_info["name"]),
            pb.DeleteInferenceResponse,
        )
        raise web.HTTPSeeOther("/inferences")

    async def _form(
        self, request: web.Request, values: dict[str, Any], error: ConsoleError | None
    ) -> web.Response:
        return await self._console.page(
            request,
            "serving/inference_form.html.j2",
            "inferences",
            status=400 if error else 200,
            values=values,
            frameworks=FRAMEWORKS,
            clusters=await serving_clusters(self._console, request),
            error=error.message if error else "",
            error_field=field_of(error) if error else "",
        )

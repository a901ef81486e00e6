"""``shipyard inference …``: test inferences of model versions (Open Inference Protocol endpoints)."""

from __future__ import annotations

import time
from typing import Annotated

import typer
from rich.markup import escape

from shipyard.cli import output
from shipyard.cli.context import client, console, errors
from shipyard.cli.example_request import curl_lines, gateway_base, model_metadata
from shipyard.cli.output import Format, OutputOpt
from shipyard.cli.repos import parse_ref
from shipyard.client.connection import Client
from shipyard.contracts.serving.v1 import serving_pb2 as pb

Opt = typer.Option
app = typer.Typer(
    help="Test inferences: serve a model version to try it (KServe V2 endpoints).", no_args_is_help=True
)
SETTLED = (
    pb.SERVING_STATUS_RUNNING,
    pb.SERVING_STATUS_FAILED,
    pb.SERVING_STATUS_ERROR,
    pb.SERVING_STATUS_STOPPED,
)


def status_name(status: int) -> str:
    """``running`` for SERVING_STATUS_RUNNING."""
    return pb.ServingStatus.Name(status).removeprefix("SERVING_STATUS_").lower()  # type: ignore[arg-type]


def spec_of(
    framework: str,
    predictor: str,
    cpu: str,
    memory: str,
    gpus: int,
    min_replicas: int,
    max_replicas: int,
    max_concurrency: int,
    serving_image: str,
    transformer_code: str,
    transformer_script: str,
    transformer_commit: str,
    transformer_image: str,
) -> pb.ServingSpec:
    """The serving spec from the command's options."""
    return pb.ServingSpec(
        framework=framework,
        predictor=predictor,
        cpu=cpu,
        memory=memory,
        gpus=gpus,
        min_replicas=min_replicas,
        max_replicas=max_replicas,
        max_concurrency=max_concurrency,
        serving_image=serving_image,
        transformer=pb.Transformer(
            code=transformer_code,
            script=transformer_script,
            commit=transformer_commit,
            image=transformer_image,
        ),
    )


def print_try_it(c: Client, endpoint: str) -> None:
    """Print requests a newcomer can paste: the V2 infer call through the gateway, its body made from
    the served model's metadata (input names, datatypes, shapes). Never wrapped: one command a line."""
    lines = curl_lines(gateway_base(c), endpoint, model_metadata(c, endpoint))
    console.print("Try it:")
    for line in lines:
        console.print(f"  {escape(line)}", highlight=False, soft_wrap=True)


@app.command()
def create(
    name: str,
    model: Annotated[str, Opt(help="The model version to serve: NAME@VERSION (NAME alone: the latest).")],
    description: Annotated[str, Opt()] = "",
    project: Annotated[str, Opt(help="The project it belongs to.")] = "",
    framework: Annotated[str, Opt(help="auto, sklearn, onnx, torchscript or custom.")] = "auto",
    predictor: Annotated[str, Opt(help="custom: module:Class in the model's files.")] = "",
    cpu: Annotated[str, Opt(help="CPU per replica on a cluster, e.g. 1 or 500m.")] = "",
    memory: Annotated[str, Opt(help="Memory per replica on a cluster, e.g. 2Gi.")] = "",
    gpus: Annotated[int, Opt(help="GPUs per replica.")] = 0,
    min_replicas: Annotated[int, Opt(help="Replicas always running.")] = 1,
    max_replicas: Annotated[int, Opt(help="Replicas under load (default: min).")] = 0,
    max_concurrency: Annotated[int, Opt(help="Requests in flight per replica before 429 (0: no limit).")] = 0,
    serving_image: Annotated[str, Opt(help="The model server image on a cluster.")] = "",
    transformer_code: Annotated[str, Opt(help="Code repo of a pre/post-processing script.")] = "",
    transformer_script: Annotated[str, Opt(help="The script in that repo, e.g. transform.py.")] = "",
    transformer_commit: Annotated[str, Opt(help="Its commit (default: the latest).")] = "",
    transformer_image: Annotated[str, Opt(help="The transformer's image on a cluster.")] = "",
    cluster: Annotated[str, Opt(help="Serve it on this Kubernetes cluster's KServe (shipyard cluster "
                                     "list; default: here).")] = "",
    wait: Annotated[bool, Opt(help="Wait until it is running (or failed).")] = True,
) -> None:
    """Serve a model version for testing; prints its endpoint and a request to try."""
    model_name, version = parse_ref(model)
    spec = spec_of(
        framework,
        predictor,
        cpu,
        memory,
        gpus,
        min_replicas,
        max_replicas,
        max_concurrency,
        serving_image,
        transformer_code,
        transformer_script,
        transformer_commit,
        transformer_image,
    )
    request = pb.CreateInferenceRequest(
        inference=pb.Inference(
            name=name,
            description=description,
            project=project,
            model=pb.ModelRef(model=model_name, version=version),
            spec=spec,
            cluster=cluster,
        )
    )
    with client() as c:
        made = c.call(c.serving.CreateInference, request)
        console.print(
            f"[green]Created test inference[/] [bold]{escape(made.name)}[/] serving "
            f"{escape(made.model.model)}@{made.model.version}"
            + (f" on cluster {escape(made.cluster)}" if made.cluster else "")
        )
        if wait:
            with console.status("starting the model servers …"):
                while made.status not in SETTLED:
                    time.sleep(0.25)
                    made = c.call(c.serving.GetInference, pb.GetInferenceRequest(name=name))
            _settled(c, made)


def _settled(c: Client, made: pb.Inference) -> None:
    if made.status == pb.SERVING_STATUS_RUNNING:
        console.print(f"[green]Running[/] at {made.endpoint}")
        print_try_it(c, made.endpoint)
        return
    errors.print(f"[bold red]{status_name(made.status)}[/]: {escape(made.status_reason)}")
    raise typer.Exit(1)


@app.command("list")
def list_(project: Annotated[str, Opt(help="Only this project.")] = "",
          fmt: OutputOpt = Format.table) -> None:
    """Test inferences: status, model, replicas and endpoint."""
    with client() as c:
        reply = c.call(c.serving.ListInferences, pb.ListInferencesRequest(project=project, page_size=1000))
    if output.emit(list(reply.inferences), fmt):
        return
    if not reply.inferences:
        console.print("[dim]No test inferences: shipyard inference create NAME --model MODEL@VERSION[/]")
        return
    table = output.table("Name", "Model", "Status", "Replicas ready", "Endpoint", "Owner")
    for i in reply.inferences:
        ready = sum(r.ready for r in i.replicas)
        table.add_row(
            escape(i.name),
            f"{escape(i.model.model)}@{i.model.version}",
            status_name(i.status),
            f"{ready}/{i.spec.min_replicas}",
            i.endpoint or "—",
            escape(i.owner),
        )
    console.print(table)


@app.command()
def get(name: str, fmt: OutputOpt = Format.table) -> None:
    """One test inference in detail, with its replicas."""
    with client() as c:
        i = c.call(c.serving.GetInference, pb.GetInferenceRequest(name=name))
    if output.emit(i, fmt):
        return
    console.print(
        f"[bold]{escape(i.name)}[/]  {status_name(i.status)}"
        + (f"  [red]{escape(i.status_reason)}[/]" if i.status_reason else "")
    )
    console.print(
        f"model {escape(i.model.model)}@{i.model.version}; framework {i.spec.framework}; "
        f"replicas {i.spec.min_replicas}-{i.spec.max_replicas}; max concurrency "
        f"{i.spec.max_concurrency or 'no limit'}; served {_where(i.cluster)}"
    )
    if i.endpoint:
        console.print(f"endpoint {i.endpoint}")
    table = output.table("Replica", "Ready", "Restarts", "Last exit", "Model")
    for r in i.replicas:
        table.add_row(r.address, "yes" if r.ready else "no", str(r.restarts), r.last_exit or "—", r.model)
    if i.replicas:
        console.print(table)


def _where(cluster: str) -> str:
    """Where an endpoint's model servers run, in words."""
    return f"on cluster {escape(cluster)} (KServe)" if cluster else "here"


@app.command()
def delete(name: str, yes: Annotated[bool, Opt("--yes", help="Do not ask.")] = False) -> None:
    """Stop a test inference's servers and delete it."""
    if not yes:
        typer.confirm(f"Delete test inference {name!r}?", abort=True)
    with client() as c:
        c.call(c.serving.DeleteInference, pb.DeleteInferenceRequest(name=name))
    console.print(f"[green]Deleted test inference[/] [bold]{escape(name)}[/]")


def print_manifest(kind: str, name: str, namespace: str) -> None:
    """The KServe InferenceService the endpoint becomes on a cluster, as YAML."""
    with client() as c:
        found = c.call(c.serving.GetKubernetesManifest,
                       pb.GetKubernetesManifestRequest(kind=kind, name=name, namespace=namespace))
    print(found.yaml, end="")


@app.command()
def manifest(name: str, namespace: Annotated[str, Opt(help="Kubernetes namespace.")] = "shipyard") -> None:
    """The KServe InferenceService this test inference becomes on a cluster (YAML; kubectl apply -f -)."""
    print_manifest("inference", name, namespace)

"""``shipyard model publish``, ``shipyard catalog …``, ``shipyard deploy`` and ``shipyard deployment …``."""

from __future__ import annotations

import time
from typing import Annotated

import typer
from google.protobuf import field_mask_pb2
from rich.markup import escape

from shipyard.cli import output
from shipyard.cli.context import client, console, errors
from shipyard.cli.output import Format, OutputOpt
from shipyard.cli.repos import parse_ref
from shipyard.cli.serving import print_manifest, print_try_it, status_name
from shipyard.client.connection import Client
from shipyard.contracts.serving.v1 import serving_pb2 as pb

Opt = typer.Option
catalog = typer.Typer(
    help="The model catalog: published model versions with their serving defaults.", no_args_is_help=True
)
deployment = typer.Typer(
    help="Deployments: catalog entries served behind a stable endpoint.", no_args_is_help=True
)
SETTLED = (
    pb.SERVING_STATUS_RUNNING,
    pb.SERVING_STATUS_FAILED,
    pb.SERVING_STATUS_ERROR,
    pb.SERVING_STATUS_STOPPED,
)
SPEC_OPTIONS = (
    "framework",
    "predictor",
    "min_replicas",
    "max_replicas",
    "max_concurrency",
    "cpu",
    "memory",
    "gpus",
    "serving_image",
)


def _spec(options: dict[str, object]) -> tuple[pb.ServingSpec, list[str]]:
    """The spec fields given on the command line, and their names."""
    given = {k: v for k, v in options.items() if k in SPEC_OPTIONS and v not in (None, "", 0)}
    spec = pb.ServingSpec(**given)  # type: ignore[arg-type]
    for key in ("transformer_code", "transformer_script"):
        if options.get(key):
            setattr(spec.transformer, key.removeprefix("transformer_"), options[key])
    names = sorted(given) + (["transformer"] if spec.HasField("transformer") else [])
    return spec, names


def publish(
    ref: Annotated[str, typer.Argument(help="The model version: NAME@VERSION.")],
    name: Annotated[str, Opt(help="The catalog entry's name.")],
    description: Annotated[str, Opt()] = "",
    project: Annotated[str, Opt()] = "",
    framework: Annotated[str, Opt(help="auto, sklearn, onnx, torchscript or custom.")] = "",
    predictor: Annotated[str, Opt(help="custom: module:Class in the model's files.")] = "",
    min_replicas: Annotated[int, Opt(help="Default replicas.")] = 0,
    max_replicas: Annotated[int, Opt()] = 0,
    max_concurrency: Annotated[int, Opt(help="Default requests in flight per replica.")] = 0,
    transformer_code: Annotated[str, Opt(help="Code repo of a pre/post-processing script.")] = "",
    transformer_script: Annotated[str, Opt(help="The script, e.g. transform.py.")] = "",
) -> None:
    """Publish a model version to the catalog with its serving defaults (ML engineers)."""
    model, version = parse_ref(ref)
    spec, _ = _spec(locals())
    entry = pb.CatalogEntry(
        name=name,
        description=description,
        project=project,
        model=pb.ModelRef(model=model, version=version),
        defaults=spec,
    )
    with client() as c:
        made = c.call(c.serving.PublishModel, pb.PublishModelRequest(entry=entry))
    console.print(
        f"[green]Published[/] {escape(made.model.model)}@{made.model.version} as [bold]{escape(made.name)}[/]"
        f"; deploy it with: shipyard deploy NAME --from-catalog {escape(made.name)}"
    )


@catalog.command("list")
def catalog_list(
    model: Annotated[str, Opt(help="Only entries of this model.")] = "", project: Annotated[str, Opt()] = "",
    fmt: OutputOpt = Format.table,
) -> None:
    """The model catalog."""
    with client() as c:
        reply = c.call(
            c.serving.ListCatalog, pb.ListCatalogRequest(model=model, project=project, page_size=1000)
        )
    if output.emit(list(reply.entries), fmt):
        return
    if not reply.entries:
        console.print("[dim]The catalog is empty: shipyard model publish MODEL@VERSION --name NAME[/]")
        return
    table = output.table("Name", "Model", "Metrics", "Published by", "When")
    for e in reply.entries:
        metrics = ", ".join(f"{k}={v:.4g}" for k, v in sorted(e.metrics.items()))
        table.add_row(
            escape(e.name),
            f"{escape(e.model.model)}@{e.model.version}",
            metrics or "—",
            escape(e.owner),
            e.create_time.ToDatetime().strftime("%Y-%m-%d %H:%M"),
        )
    console.print(table)


@catalog.command("get")
def catalog_get(name: str, fmt: OutputOpt = Format.table) -> None:
    """One catalog entry with its serving defaults."""
    with client() as c:
        e = c.call(c.serving.GetCatalogEntry, pb.GetCatalogEntryRequest(name=name))
    if output.emit(e, fmt):
        return
    d = e.defaults
    console.print(
        f"[bold]{escape(e.name)}[/]: {escape(e.model.model)}@{e.model.version}, published by "
        f"{escape(e.owner)}\nframework {d.framework}; replicas {d.min_replicas}-{d.max_replicas}; "
        f"max concurrency {d.max_concurrency or 'no limit'}"
        + (
            f"; transformer {d.transformer.code}@{d.transformer.commit[:12]}:{d.transformer.script}"
            if d.transformer.code
            else ""
        )
    )


@catalog.command("delete")
def catalog_delete(name: str, yes: Annotated[bool, Opt("--yes", help="Do not ask.")] = False) -> None:
    """Remove an entry from the catalog (not while it is deployed)."""
    if not yes:
        typer.confirm(f"Remove {name!r} from the catalog?", abort=True)
    with client() as c:
        c.call(c.serving.DeleteCatalogEntry, pb.DeleteCatalogEntryRequest(name=name))
    console.print(f"[green]Removed[/] {escape(name)} from the catalog")


def _wait(c: Client, name: str, made: pb.Deployment) -> pb.Deployment:
    with console.status("waiting for the model servers …"):
        while made.status not in SETTLED:
            time.sleep(0.25)
            made = c.call(c.serving.GetDeployment, pb.GetDeploymentRequest(name=name))
    return made


def _settled(c: Client, made: pb.Deployment) -> None:
    if made.status == pb.SERVING_STATUS_RUNNING:
        console.print(
            f"[green]Running[/] {escape(made.model.model)}@{made.model.version} at {made.endpoint}"
        )
        print_try_it(c, made.endpoint)
        return
    errors.print(f"[bold red]{status_name(made.status)}[/]: {escape(made.status_reason)}")
    raise typer.Exit(1)


def deploy(
    name: str,
    from_catalog: Annotated[str, Opt("--from-catalog", help="The catalog entry to deploy.")],
    description: Annotated[str, Opt()] = "",
    project: Annotated[str, Opt(help="Default: the catalog entry's.")] = "",
    min_replicas: Annotated[int, Opt(help="Replicas always running (default: the entry's).")] = 0,
    max_replicas: Annotated[int, Opt()] = 0,
    max_concurrency: Annotated[int, Opt(help="Requests in flight per replica before 429.")] = 0,
    cpu: Annotated[str, Opt()] = "",
    memory: Annotated[str, Opt()] = "",
    gpus: Annotated[int, Opt()] = 0,
    cluster: Annotated[str, Opt(help="Serve it on this Kubernetes cluster's KServe, for good (shipyard "
                                     "cluster list; default: here).")] = "",
    wait: Annotated[bool, Opt(help="Wait until it runs (or fails).")] = True,
) -> None:
    """Deploy a catalog entry behind a stable endpoint (production engineers)."""
    spec, _ = _spec(locals())
    request = pb.CreateDeploymentRequest(
        deployment=pb.Deployment(
            name=name, catalog_entry=from_catalog, description=description, project=project, spec=spec,
            cluster=cluster,
        )
    )
    with client() as c:
        made = c.call(c.serving.CreateDeployment, request)
        on = f" on cluster {escape(made.cluster)}" if made.cluster else ""
        console.print(f"[green]Deploying[/] {escape(from_catalog)} as [bold]{escape(name)}[/]{on}")
        if wait:
            _settled(c, _wait(c, name, made))


@deployment.command("edit")
def edit(
    name: str,
    model: Annotated[str, Opt(help="Serve this published version instead: NAME@VERSION.")] = "",
    from_catalog: Annotated[str, Opt("--from-catalog", help="Serve this catalog entry instead.")] = "",
    min_replicas: Annotated[int, Opt()] = 0,
    max_replicas: Annotated[int, Opt()] = 0,
    max_concurrency: Annotated[int, Opt()] = 0,
    wait: Annotated[bool, Opt(help="Wait until it settles.")] = True,
) -> None:
    """Swap the model behind a deployment's endpoint (no request dropped), or change its replicas."""
    spec, fields = _spec(locals())
    model_name, version = parse_ref(model) if model else ("", 0)
    request = pb.UpdateDeploymentRequest(
        name=name,
        catalog_entry=from_catalog,
        spec=spec,
        model=pb.ModelRef(model=model_name, version=version),
        update_mask=field_mask_pb2.FieldMask(paths=[f"spec.{f}" for f in fields]),
    )
    with client() as c:
        changed = c.call(c.serving.UpdateDeployment, request)
        console.print(
            f"[green]Updating[/] {escape(name)} to {escape(changed.model.model)}@{changed.model.version}"
        )
        if wait:
            _settled(c, _wait(c, name, changed))


@deployment.command("list")
def list_(project: Annotated[str, Opt()] = "", fmt: OutputOpt = Format.table) -> None:
    """Deployments: status, model and endpoint."""
    with client() as c:
        reply = c.call(c.serving.ListDeployments, pb.ListDeploymentsRequest(project=project, page_size=1000))
    if output.emit(list(reply.deployments), fmt):
        return
    if not reply.deployments:
        console.print("[dim]No deployments: shipyard deploy NAME --from-catalog ENTRY[/]")
        return
    table = output.table("Name", "Model", "Catalog entry", "Status", "Replicas ready", "Endpoint")
    for d in reply.deployments:
        ready = sum(r.ready for r in d.replicas)
        table.add_row(
            escape(d.name),
            f"{escape(d.model.model)}@{d.model.version}",
            escape(d.catalog_entry),
            status_name(d.status),
            f"{ready}/{d.spec.min_replicas}",
            d.endpoint or "—",
        )
    console.print(table)


@deployment.command("get")
def get(name: str, fmt: OutputOpt = Format.table) -> None:
    """One deployment with its replicas."""
    with client() as c:
        d = c.call(c.serving.GetDeployment, pb.GetDeploymentRequest(name=name))
    if output.emit(d, fmt):
        return
    console.print(
        f"[bold]{escape(d.name)}[/]  {status_name(d.status)}  {escape(d.model.model)}@{d.model.version}"
        + (
            f" (before: {d.previous_model.model}@{d.previous_model.version})"
            if d.previous_model.model
            else ""
        )
        + (f"\n[red]{escape(d.status_reason)}[/]" if d.status_reason else "")
    )
    console.print(f"served {f'on cluster {escape(d.cluster)} (KServe)' if d.cluster else 'here'}")
    table = output.table("Replica", "Ready", "Restarts", "Last exit", "Model")
    for r in d.replicas:
        table.add_row(r.address, "yes" if r.ready else "no", str(r.restarts), r.last_exit or "—", r.model)
    if d.replicas:
        console.print(table)


@deployment.command("delete")
def delete(name: str, yes: Annotated[bool, Opt("--yes", help="Do not ask.")] = False) -> None:
    """Stop a deployment's servers and delete it."""
    if not yes:
        typer.confirm(f"Delete deployment {name!r}?", abort=True)
    with client() as c:
        c.call(c.serving.DeleteDeployment, pb.DeleteDeploymentRequest(name=name))
    console.print(f"[green]Deleted deployment[/] [bold]{escape(name)}[/]")


@deployment.command("manifest")
def manifest(name: str, namespace: Annotated[str, Opt(help="Kubernetes namespace.")] = "shipyard") -> None:
    """The KServe InferenceService (and transformer) this deployment becomes on a cluster (YAML)."""
    print_manifest("deployment", name, namespace)

"""The ``shipyard`` command: run the platform, sign in, and work with it."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from shipyard.cli import (
    credentials,
    demo,
    deployments,
    events,
    garbage,
    lineage,
    projects,
    repos,
    runs,
    serving,
    templates,
    tensorboard,
    tokens,
    users,
    webhooks,
)
from shipyard.cli.context import client, console, errors, said
from shipyard.client.connection import (
    Client,
    ClientError,
    Credentials,
    embedded_credentials,
    save_credentials,
)
from shipyard.contracts.gateway.v1 import gateway_pb2
from shipyard.kit import bubblewrap
from shipyard.kit.settings import Settings
from shipyard.local.supervisor import AlreadyRunning, StackConfig, Supervisor

app = typer.Typer(help="Shipyard: an open, self-hostable MLOps platform.", no_args_is_help=True,
                  pretty_exceptions_enable=False)
app.add_typer(projects.app, name="project")
for kind in repos.KINDS:
    kind_app = repos.repo_app(kind)
    if kind == "model":
        kind_app.command("publish")(deployments.publish)
    app.add_typer(kind_app, name=kind)
app.add_typer(repos.move, name="repo")
app.add_typer(credentials.app, name="credential")
app.add_typer(events.app, name="events")
app.add_typer(users.app, name="user")
app.add_typer(tokens.app, name="token")
app.command()(demo.demo)
app.add_typer(runs.app, name="run")
app.add_typer(serving.app, name="inference")
app.add_typer(deployments.catalog, name="catalog")
app.command()(deployments.deploy)
app.add_typer(deployments.deployment, name="deployment")
app.add_typer(templates.app, name="template")
app.add_typer(tensorboard.app, name="tensorboard")
app.add_typer(webhooks.app, name="webhook")
app.command()(events.activity)
app.add_typer(lineage.app, name="lineage")
app.command()(lineage.dashboard)
app.add_typer(lineage.admin, name="admin")
lineage.admin.command("gc")(garbage.collect_garbage)

DataDirOption = Annotated[Path, typer.Option("--data-dir", help="Where Shipyard keeps everything.")]


@app.command()
def up(data_dir: DataDirOption = Path(".shipyard"),
       grpc_port: Annotated[int, typer.Option(help="Public gRPC port.")] = 50051,
       http_port: Annotated[int, typer.Option(help="Console and JSON API port.")] = 8080,
       nats_port: Annotated[int, typer.Option(help="Embedded NATS port.")] = 4222,
       path_import_roots: Annotated[str | None, typer.Option(
           envvar="SHIPYARD_PATH_IMPORT_ROOTS",
           help="Directories (':'-separated) whose files the platform reads itself when an operator "
                "pushes them, instead of an upload; '' for none. Default: your home directory. Other "
                "users upload unless SHIPYARD_PATH_IMPORTS_FOR=all.")] = None,
       single_user: Annotated[bool, typer.Option(
           "--single-user", envvar="SHIPYARD_SINGLE_USER",
           help="Where runs cannot be isolated (no usable bubblewrap), start everyone's runs anyway, "
                "sharing this machine as the platform's user. Default: only operators' runs start "
                "there.")] = False) -> None:
    """Run Shipyard on this machine until Ctrl-C (NATS, four services and the gateway)."""
    # On a workstation the platform runs as you, the operator: reading your directories in place is
    # only faster. Other users' pushes upload (SHIPYARD_PATH_IMPORTS_FOR, default operators).
    roots = str(Path.home()) if path_import_roots is None else path_import_roots
    config = StackConfig(data_dir=data_dir, grpc_port=grpc_port, http_port=http_port, nats_port=nats_port,
                         extra_env={"SHIPYARD_PATH_IMPORT_ROOTS": roots,
                                    **({"SHIPYARD_SINGLE_USER": "true"} if single_user else {})})
    _tell_isolation(single_user)
    try:
        asyncio.run(_up(config))
    except AlreadyRunning as exc:
        errors.print(f"[bold red]{exc}[/]")
        raise typer.Exit(1) from None


def _tell_isolation(single_user: bool) -> None:
    """Say what it means when runs cannot be isolated here (run-svc asks the same question)."""
    try:
        found = bubblewrap.find(bubblewrap.RunAs.parse(Settings().run_user))
    except ValueError as exc:
        errors.print(f"[bold red]SHIPYARD_RUN_USER:[/] {exc}")
        raise typer.Exit(1) from None
    if not isinstance(found, str):
        return
    if single_user:
        console.print(f"[yellow]Runs cannot be isolated here: {found}.[/] Single-user mode: everyone's runs "
                      "start, sharing this machine as the platform's user.")
        return
    console.print(f"[yellow]Runs cannot be isolated here: {found}.[/] Only operators' runs will start (a run "
                  "that is not isolated acts as the platform): fix that and start again, or pass "
                  "--single-user (SHIPYARD_SINGLE_USER=true) to let everyone's runs share this machine.")


async def _up(config: StackConfig) -> None:
    supervisor = Supervisor(config, on_event=lambda message: console.print(f"[yellow]{message}[/]"))
    with console.status("Starting NATS, repo-svc, run-svc, serving-svc, lineage-svc and the gateway…"):
        await supervisor.start()
        ready = await supervisor.wait_ready()
    data = supervisor.data
    if ready:
        console.print(f"[bold green]Shipyard is up.[/] Data in {data.root}\n"
                      f"  console:  http://{config.http_address}\n"
                      f"  gRPC:     {config.grpc_address}\n"
                      f"  NATS:     {config.nats_url}\n"
                      f"  sign in:  shipyard login --data-dir {data.root}   "
                      f"(admin token in {data.admin_token})\n"
                      f"  logs:     {data.logs}\n"
                      "Press Ctrl-C to stop.")
    elif not supervisor.stopping:
        console.print(f"[bold red]Shipyard did not become healthy in time;[/] see the logs in {data.logs}. "
                      "Still supervising; Ctrl-C to stop.")
    await supervisor.run_until_stopped()
    console.print("Shipyard stopped.")


@app.command()
def login(server: Annotated[str | None, typer.Option(help="Gateway HOST:PORT.",
                                                    envvar="SHIPYARD_SERVER")] = None,
          token: Annotated[str | None, typer.Option(help="API token.", envvar="SHIPYARD_TOKEN")] = None,
          data_dir: DataDirOption = Path(".shipyard")) -> None:
    """Sign in: with --server/--token, or (embedded mode) with the data directory's admin token."""
    credentials: Credentials | None
    if token:
        credentials = Credentials(server or "127.0.0.1:50051", token)
    else:
        credentials = embedded_credentials(data_dir)
        if credentials is None:
            errors.print(f"[bold red]No token given[/] and no {data_dir / 'admin-token'}: pass --token, "
                         "set SHIPYARD_TOKEN, or run 'shipyard up' first.")
            raise typer.Exit(1)
        if server:
            credentials = Credentials(server, credentials.token)
    connection = Client(credentials)
    try:
        user = connection.call(connection.identity.WhoAmI, gateway_pb2.WhoAmIRequest())
    except ClientError as exc:
        errors.print(f"[bold red]{exc.code}[/]: {escape(said(exc))}")
        raise typer.Exit(1) from None
    finally:
        connection.close()
    path = save_credentials(credentials)
    roles = ", ".join(users.role_name(r) for r in user.roles)
    console.print(f"Signed in to {credentials.server} as [bold]{user.name}[/] ({roles}). Saved to {path}.")


@app.command()
def status() -> None:
    """Health of every part of the platform."""
    with client() as c:
        reply = c.status()
    table = Table("Service", "Health", "Address", "Detail")
    for s in reply.services:
        table.add_row(s.name, "[green]healthy[/]" if s.healthy else "[red]unhealthy[/]", s.address, s.detail)
    console.print(table)
    console.print(f"Shipyard {reply.version}: " + ("[bold green]all healthy[/]" if reply.healthy
                                                    else "[bold red]degraded[/]"))
    if not reply.healthy:
        raise typer.Exit(1)


@app.command()
def whoami() -> None:
    """Who the saved token belongs to."""
    with client() as c:
        user = c.call(c.identity.WhoAmI, gateway_pb2.WhoAmIRequest())
    console.print(f"{user.name} ({', '.join(users.role_name(r) for r in user.roles)})")

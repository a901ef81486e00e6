"""``shipyard up``, ``login``, ``status`` and ``whoami``: run the platform and sign in to it."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape

from shipyard.cli import output, users
from shipyard.cli.context import client, console, errors, said
from shipyard.cli.output import Format, OutputOpt
from shipyard.client.connection import (
    DEFAULT_SERVER,
    Client,
    ClientError,
    Credentials,
    embedded_credentials,
    save_credentials,
)
from shipyard.contracts.gateway.v1 import gateway_pb2

if TYPE_CHECKING:
    from shipyard.local.supervisor import StackConfig

DataDirOption = Annotated[Path, typer.Option("--data-dir", help="Where Shipyard keeps everything.")]


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
    from shipyard.local.supervisor import AlreadyRunning, StackConfig  # only ``up`` runs the platform

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
    from shipyard.kit import bubblewrap
    from shipyard.kit.settings import Settings

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
    from shipyard.local.isolation import isolation_notice
    from shipyard.local.supervisor import Supervisor

    # Said again at the top of the banner: the start-up messages above it scroll away.
    notice = isolation_notice(single_user=config.extra_env.get("SHIPYARD_SINGLE_USER") == "true")

    supervisor = Supervisor(config, on_event=lambda message: console.print(f"[yellow]{message}[/]"))
    with console.status("Starting NATS, repo-svc, run-svc, serving-svc, lineage-svc and the gateway…"):
        await supervisor.start()
        ready = await supervisor.wait_ready()
    data = supervisor.data
    if ready:
        if notice:
            console.print(f"[bold yellow]{escape(notice)}[/]", soft_wrap=True)
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
            errors.print(_no_admin_token(data_dir, server or DEFAULT_SERVER), soft_wrap=True)
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


def _no_admin_token(data_dir: Path, server: str) -> str:
    """Why ``login`` found no token, and what to pass: a stack that answers at ``server`` keeps its
    data somewhere else (``shipyard up --data-dir``), so name the option rather than say it is down."""
    missing = escape(str(data_dir / "admin-token"))
    if _answers(server):
        return (f"[bold red]No token given[/] and no {missing}: Shipyard answers at {escape(server)}, so it "
                "keeps its data in another directory. Pass the one 'shipyard up' printed: "
                "shipyard login --data-dir DIR (or pass --token, or set SHIPYARD_TOKEN).")
    return (f"[bold red]No token given[/] and no {missing}, and nothing answers at {escape(server)}: run "
            "'shipyard up' first, or pass --data-dir DIR if it runs with another data directory, or "
            "--server and --token for a remote Shipyard.")


def _answers(server: str) -> bool:
    host, _, port = server.rpartition(":")
    try:
        with socket.create_connection((host.strip("[]") or "127.0.0.1", int(port)), timeout=0.5):
            return True
    except (OSError, ValueError):
        return False


def status(fmt: OutputOpt = Format.table) -> None:
    """Health of every part of the platform."""
    with client() as c:
        reply = c.status()
    if output.emit(reply, fmt):
        raise typer.Exit(0 if reply.healthy else 1)
    table = output.table("Service", "Health", "Address", "Detail")
    for s in reply.services:
        table.add_row(s.name, "[green]healthy[/]" if s.healthy else "[red]unhealthy[/]", s.address, s.detail)
    console.print(table)
    console.print(f"Shipyard {reply.version}: " + ("[bold green]all healthy[/]" if reply.healthy
                                                    else "[bold red]degraded[/]"))
    if not reply.healthy:
        raise typer.Exit(1)


def whoami(fmt: OutputOpt = Format.table) -> None:
    """Who the saved token belongs to."""
    with client() as c:
        user = c.call(c.identity.WhoAmI, gateway_pb2.WhoAmIRequest())
    if output.emit(user, fmt):
        return
    console.print(f"{user.name} ({', '.join(users.role_name(r) for r in user.roles)})")

"""``shipyard webhook …``: events POSTed to outside automation as signed CloudEvents."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from shipyard.cli import output
from shipyard.cli.context import client, console
from shipyard.cli.output import Format, OutputOpt
from shipyard.contracts.gateway.v1 import gateway_pb2 as pb

app = typer.Typer(help="Webhooks: events pushed to your automation (signed CloudEvents JSON).",
                  no_args_is_help=True)


def _patterns(values: list[str]) -> list[str]:
    """--types given repeatedly, comma-separated, or both."""
    return [p.strip() for value in values for p in value.split(",") if p.strip()]


def _read_secret(secret: str | None, secret_file: Path | None) -> str:
    if secret is not None:
        return secret
    if secret_file is not None:
        return secret_file.read_text().strip("\n")
    return str(typer.prompt("Signing secret (16-256 characters)", hide_input=True, confirmation_prompt=True))


@app.command()
def create(
    name: str,
    url: Annotated[str, typer.Option(help="Where to POST the events (http or https).")],
    types: Annotated[list[str] | None, typer.Option(
        help="Event type patterns, e.g. 'io.shipyard.run.*' (repeatable or comma-separated; default: all).")
    ] = None,
    project: Annotated[str, typer.Option(help="Only this project's events.")] = "",
    secret: Annotated[str | None, typer.Option(
        envvar="SHIPYARD_WEBHOOK_SECRET",
        help="The signing secret (16-256 characters). Prefer --secret-file or the prompt: a "
             "command line lands in the shell's history.")] = None,
    secret_file: Annotated[Path | None, typer.Option(help="Read the signing secret here.")] = None,
) -> None:
    """Send the events that happen from now on to URL, signed with your secret."""
    key = _read_secret(secret, secret_file)
    request = pb.CreateWebhookRequest(
        webhook=pb.Webhook(name=name, url=url, types=_patterns(types or []), project=project), secret=key)
    with client() as c:
        webhook = c.call(c.webhooks.CreateWebhook, request)
    console.print(f"[green]Created webhook[/] [bold]{escape(webhook.name)}[/] → {escape(webhook.url)} "
                  f"(events after stream sequence {webhook.start_sequence})")


@app.command("list")
def list_(fmt: OutputOpt = Format.table) -> None:
    """Your webhooks (an operator's: everyone's) and how their deliveries go."""
    with client() as c:
        reply = c.call(c.webhooks.ListWebhooks, pb.ListWebhooksRequest())
    if output.emit(list(reply.webhooks), fmt):
        return
    if not reply.webhooks:
        console.print("[dim]No webhooks yet: shipyard webhook create NAME --url URL[/]")
        return
    table = output.table("Name", "URL", "Types", "Project", "Delivered", "Dead letters", "Last error",
                         "Owner")
    for w in reply.webhooks:
        table.add_row(escape(w.name), escape(w.url), escape(", ".join(w.types) or "all"), escape(w.project),
                      str(w.delivered), str(w.dead_letters), escape(w.last_error), escape(w.owner))
    console.print(table)


@app.command()
def get(name: str, fmt: OutputOpt = Format.table) -> None:
    """One webhook (by name, or an operator by id)."""
    with client() as c:
        w = c.call(c.webhooks.GetWebhook, pb.GetWebhookRequest(name=name))
    if output.emit(w, fmt):
        return
    console.print(f"[bold]{escape(w.name)}[/] (id {w.id}, by {escape(w.owner)}) → {escape(w.url)}")
    console.print(f"  types:      {escape(', '.join(w.types) or 'all')}")
    console.print(f"  project:    {escape(w.project) or 'all'}")
    console.print(f"  delivered:  {w.delivered} (up to stream sequence {w.delivered_sequence}; "
                  f"from {w.start_sequence + 1})")
    console.print(f"  dead letters: {w.dead_letters}")
    if w.last_error:
        console.print(f"  last error: [red]{escape(w.last_error)}[/]")


@app.command()
def delete(name: str) -> None:
    """Delete a webhook: nothing more is sent, its dead letters go."""
    with client() as c:
        c.call(c.webhooks.DeleteWebhook, pb.DeleteWebhookRequest(name=name))
    console.print(f"[green]Deleted webhook[/] [bold]{escape(name)}[/]")


@app.command("dead-letters")
def dead_letters(name: str, limit: Annotated[int, typer.Option(help="How many, oldest first.")] = 50,
                 fmt: OutputOpt = Format.table) -> None:
    """The events a webhook's receiver never accepted, oldest first."""
    with client() as c:
        reply = c.call(c.webhooks.ListDeadLetters, pb.ListDeadLettersRequest(name=name, page_size=limit))
    if output.emit(list(reply.dead_letters), fmt):
        return
    if not reply.dead_letters:
        console.print("[dim]No dead letters.[/]")
        return
    table = output.table("Sequence", "Given up", "Type", "Subject", "Attempts", "Last error")
    for d in reply.dead_letters:
        table.add_row(str(d.sequence), d.time.ToDatetime().strftime("%Y-%m-%d %H:%M:%S"), d.type,
                      escape(d.subject), str(d.attempts), escape(d.last_error))
    console.print(table)
    if reply.next_page_token:
        console.print(f"[dim]More than {limit}: use --limit.[/]")

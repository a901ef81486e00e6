"""``shipyard events …`` and ``shipyard activity``."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

import typer

from shipyard.cli import output
from shipyard.cli.context import client, console
from shipyard.cli.output import Format, OutputOpt
from shipyard.contracts.gateway.v1 import gateway_pb2 as pb
from shipyard.contracts.lineage.v1 import lineage_pb2
from shipyard.kit.event_json import structured_document
from shipyard.kit.events import CATALOG, Event

app = typer.Typer(help="Live events (CloudEvents) as they happen.", no_args_is_help=True)


def event_json(event: pb.CloudEvent) -> dict[str, Any]:
    """A CloudEvent as structured-mode JSON (what webhooks receive), its data decoded from protobuf."""
    kind = CATALOG.get(event.type)
    if kind is None:  # a type newer than this client: its data stays opaque bytes
        return {"specversion": event.spec_version, "id": event.id, "type": event.type,
                "source": event.source, "subject": event.subject, "time": event.time.ToJsonString(),
                "dataschema": event.data_schema, "sequence": event.sequence, "data": event.data.hex()}
    return structured_document(Event(
        id=event.id, type=event.type, source=event.source, subject=event.subject,
        time=event.time.ToDatetime(tzinfo=UTC), data=kind.message.FromString(event.data),
        traceparent=event.traceparent, sequence=event.sequence))


@app.command()
def watch(types: Annotated[list[str] | None, typer.Option("--type", help="Event type pattern, e.g. "
                                                          "'io.shipyard.project.*' (repeatable).")] = None,
          from_start: Annotated[bool, typer.Option(help="Replay the whole stream first.")] = False,
          after: Annotated[int, typer.Option(help="Resume after this stream sequence.")] = 0,
          as_json: Annotated[bool, typer.Option("--json", help="One JSON CloudEvent per line.")] = False,
          count: Annotated[int, typer.Option(help="Stop after this many events (0: never).")] = 0) -> None:
    """Print events as they happen, until Ctrl-C."""
    request = pb.WatchRequest(types=types or [], start_sequence=after, from_start=from_start)
    seen = 0
    with client() as c:
        try:
            for event in c.stream(c.events.Watch, request):
                doc = event_json(event)
                if as_json:
                    print(json.dumps(doc), flush=True)
                else:
                    console.print(f"[dim]{event.sequence:>6}[/] {doc['time']} [bold cyan]{event.type}[/] "
                                  f"{event.subject}  [dim]{json.dumps(doc['data'])[:160]}[/]")
                seen += 1
                if count and seen >= count:
                    return
        except KeyboardInterrupt:
            return


@app.command()
def catalog() -> None:
    """Print the event catalog as an AsyncAPI 3.0 document (JSON)."""
    from shipyard.kit.asyncapi import catalog_document  # the broker's schema tools: only here

    print(json.dumps(catalog_document(), indent=2))


def since_of(text: str) -> datetime:
    """``30m``, ``1h``, ``2d`` or ``90s`` ago, or an ISO 8601 time."""
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
    if text[:-1].isdigit() and text[-1:] in units:
        return datetime.now(UTC) - timedelta(seconds=int(text[:-1]) * units[text[-1]])
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise typer.BadParameter("use 30m, 1h, 2d or an ISO 8601 time", param_hint="--since") from None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def activity(project: Annotated[str, typer.Option(help="Only this project.")] = "",
             since: Annotated[str, typer.Option(help="Only this recent: 30m, 1h, 2d, or an ISO time.")] = "",
             event_type: Annotated[str, typer.Option("--type", help="Only this area or event type, e.g. "
                                                    "io.shipyard.run. or io.shipyard.run.failed.v1")] = "",
             limit: Annotated[int, typer.Option(help="How many entries.")] = 50,
             fmt: OutputOpt = Format.table) -> None:
    """What happened lately (the activity feed), newest first."""
    request = lineage_pb2.ListActivityRequest(page_size=limit, project=project, type_prefix=event_type)
    if since:
        request.since.FromDatetime(since_of(since))
    with client() as c:
        reply = c.call(c.lineage.ListActivity, request)
    if output.emit(list(reply.activities), fmt):
        return
    table = output.table("When", "Who", "What", "Project")
    for a in reply.activities:
        table.add_row(a.time.ToDatetime().strftime("%Y-%m-%d %H:%M:%S"), a.actor, a.summary, a.project)
    console.print(table if reply.activities else "[dim]Nothing yet.[/]")

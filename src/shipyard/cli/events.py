"""``shipyard events …`` and ``shipyard activity``."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer
from google.protobuf import json_format
from rich.table import Table

from shipyard.cli.context import client, console
from shipyard.contracts.gateway.v1 import gateway_pb2 as pb
from shipyard.contracts.lineage.v1 import lineage_pb2
from shipyard.kit.asyncapi import catalog_document
from shipyard.kit.events import CATALOG

app = typer.Typer(help="Live events (CloudEvents) as they happen.", no_args_is_help=True)


def event_json(event: pb.CloudEvent) -> dict[str, Any]:
    """A CloudEvent as structured-mode JSON, its data decoded from protobuf."""
    kind = CATALOG.get(event.type)
    data: Any = json_format.MessageToDict(kind.message.FromString(event.data)) if kind else event.data.hex()
    return {"specversion": event.spec_version, "id": event.id, "type": event.type, "source": event.source,
            "subject": event.subject, "time": event.time.ToJsonString(),
            "dataschema": event.data_schema, "sequence": event.sequence, "data": data}


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
    print(json.dumps(catalog_document(), indent=2))


def activity(project: Annotated[str, typer.Option(help="Only this project.")] = "",
             limit: Annotated[int, typer.Option(help="How many entries.")] = 50) -> None:
    """What happened lately (the activity feed), newest first."""
    with client() as c:
        reply = c.call(c.lineage.ListActivity, lineage_pb2.ListActivityRequest(page_size=limit,
                                                                              project=project))
    table = Table("When", "Who", "What", "Project")
    for a in reply.activities:
        table.add_row(a.time.ToDatetime().strftime("%Y-%m-%d %H:%M:%S"), a.actor, a.summary, a.project)
    console.print(table if reply.activities else "[dim]Nothing yet.[/]")

"""``shipyard template …``: run settings kept under a name (``run submit --template NAME``)."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.markup import escape

from shipyard.cli import output
from shipyard.cli.context import client, console
from shipyard.cli.output import Format, OutputOpt
from shipyard.cli.runs import kind_name
from shipyard.contracts.run.v1 import runs_pb2 as pb

app = typer.Typer(help="Run templates: a run's settings, to submit again.", no_args_is_help=True)


@app.command()
def create(
    name: str,
    from_run: Annotated[str, typer.Option("--from", help="The run whose settings to keep.")],
    description: Annotated[str, typer.Option()] = "",
) -> None:
    """Keep a run's settings as a template (its inputs and code follow their latest versions)."""
    with client() as c:
        template = c.call(c.runs.CreateTemplate,
                          pb.CreateTemplateRequest(name=name, from_run=from_run, description=description))
    console.print(f"[green]Created template[/] [bold]{escape(template.name)}[/] from run {escape(from_run)}; "
                  f"submit with: shipyard run submit NAME --template {escape(template.name)}")


@app.command("list")
def list_(fmt: OutputOpt = Format.table) -> None:
    """Every run template."""
    with client() as c:
        reply = c.call(c.runs.ListTemplates, pb.ListTemplatesRequest())
    if output.emit(list(reply.templates), fmt):
        return
    if not reply.templates:
        console.print("[dim]No templates yet: shipyard template create NAME --from RUN[/]")
        return
    table = output.table("Name", "Kind", "Command", "Hyperparameters", "Owner", "Description")
    for t in reply.templates:
        hp = " ".join(f"{k}={v}" for k, v in sorted(t.run.hyperparameters.items()))
        table.add_row(escape(t.name), kind_name(t.run.kind), escape(t.run.command), escape(hp),
                      escape(t.owner), escape(t.description))
    console.print(table)


@app.command()
def get(name: str, fmt: OutputOpt = Format.table) -> None:
    """One template's settings."""
    with client() as c:
        t = c.call(c.runs.GetTemplate, pb.GetTemplateRequest(name=name))
    if output.emit(t, fmt):
        return
    console.print(f"[bold]{escape(t.name)}[/] ({kind_name(t.run.kind)}, by {escape(t.owner)}): "
                  f"{escape(t.description) or '—'}")
    console.print(f"  command: {escape(t.run.command)}")
    for i in t.run.inputs:
        console.print(f"  input:   {i.repo_kind} {escape(i.repo)} → {escape(i.mount_path)}")
    for o in t.run.outputs:
        console.print(f"  output:  {o.repo_kind} {escape(o.repo)}")
    if t.run.hyperparameters:
        pairs = " ".join(f"{k}={v}" for k, v in sorted(t.run.hyperparameters.items()))
        console.print(f"  hyperparameters: {escape(pairs)}")
    if t.has_config_file:
        console.print(f"  config file: {escape(t.run.config_file_name)}")


@app.command()
def delete(name: str) -> None:
    """Delete a template (runs made from it stay)."""
    with client() as c:
        c.call(c.runs.DeleteTemplate, pb.DeleteTemplateRequest(name=name))
    console.print(f"[green]Deleted template[/] [bold]{escape(name)}[/]")

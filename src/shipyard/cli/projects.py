"""``shipyard project …``"""

from __future__ import annotations

from typing import Annotated

import typer
from google.protobuf.field_mask_pb2 import FieldMask

from shipyard.cli import output
from shipyard.cli.context import client, console
from shipyard.cli.output import Format, OutputOpt
from shipyard.contracts.repo.v1 import projects_pb2 as pb

app = typer.Typer(help="Projects: a team's workspace and leaderboard.", no_args_is_help=True)


def _show(project: pb.Project) -> None:
    console.print(output.fields((
        ("name", project.name), ("description", project.description), ("thumbnail", project.thumbnail_url),
        ("leaderboard", "yes" if project.leaderboard else "no"), ("details", project.details),
        ("owner", project.owner), ("created", project.create_time.ToDatetime().isoformat(timespec="seconds")),
        ("updated", project.update_time.ToDatetime().isoformat(timespec="seconds")),
        ("revision", str(project.revision)))))


@app.command()
def create(names: Annotated[list[str], typer.Argument(help="One name, or up to 100 (created all or none).",
                                                      metavar="NAME...")],
           description: Annotated[str, typer.Option(help="What the project is for.")] = "",
           thumbnail_url: Annotated[str, typer.Option(help="http(s) URL of an image.")] = "",
           leaderboard: Annotated[bool, typer.Option(help="Rank the project's models.")] = False,
           details: Annotated[str, typer.Option(help="Longer text (Markdown).")] = "") -> None:
    """Create a project, or several with the same settings in one all-or-nothing call."""
    def request(name: str) -> pb.CreateProjectRequest:
        return pb.CreateProjectRequest(project=pb.Project(
            name=name, description=description, thumbnail_url=thumbnail_url, leaderboard=leaderboard,
            details=details))

    with client() as c:
        if len(names) == 1:
            made = [c.call(c.projects.CreateProject, request(names[0]))]
        else:
            reply = c.call(c.projects.BatchCreateProjects,
                           pb.BatchCreateProjectsRequest(requests=[request(n) for n in names]))
            made = list(reply.projects)
    for project in made:
        console.print(f"[green]Created project[/] [bold]{project.name}[/]")


@app.command("list")
def list_(limit: Annotated[int, typer.Option(help="Show at most this many (0: all).")] = 0,
          fmt: OutputOpt = Format.table) -> None:
    """List projects in a table."""
    found: list[pb.Project] = []
    with client() as c:
        token = ""
        while True:
            reply = c.call(c.projects.ListProjects, pb.ListProjectsRequest(page_size=200, page_token=token))
            found.extend(reply.projects)
            token = reply.next_page_token
            if not token or (limit and len(found) >= limit):
                break
    found = found[:limit] if limit else found
    if output.emit(found, fmt):
        return
    table = output.table("Name", "Description", "Leaderboard", "Owner", "Created")
    for p in found:
        table.add_row(p.name, p.description, "yes" if p.leaderboard else "no", p.owner,
                      p.create_time.ToDatetime().strftime("%Y-%m-%d %H:%M"))
    console.print(table if found else "[dim]No projects yet.[/]")


@app.command()
def get(name: str, fmt: OutputOpt = Format.table) -> None:
    """Show one project."""
    with client() as c:
        project = c.call(c.projects.GetProject, pb.GetProjectRequest(name=name))
    if not output.emit(project, fmt):
        _show(project)


@app.command()
def edit(name: str,
         new_name: Annotated[str | None, typer.Option("--name", help="Rename the project.")] = None,
         description: Annotated[str | None, typer.Option()] = None,
         thumbnail_url: Annotated[str | None, typer.Option()] = None,
         leaderboard: Annotated[bool | None, typer.Option("--leaderboard/--no-leaderboard")] = None,
         details: Annotated[str | None, typer.Option()] = None) -> None:
    """Change a project's fields (only those given)."""
    changes = {"name": new_name, "description": description, "thumbnail_url": thumbnail_url,
               "leaderboard": leaderboard, "details": details}
    given = {k: v for k, v in changes.items() if v is not None}
    if not given:
        raise typer.BadParameter("give at least one field to change, e.g. --description")
    changed = pb.Project()
    for field, value in given.items():
        setattr(changed, field, value)
    with client() as c:
        project = c.call(c.projects.UpdateProject, pb.UpdateProjectRequest(
            name=name, project=changed, update_mask=FieldMask(paths=list(given))))
    console.print(f"[green]Updated project[/] [bold]{project.name}[/] ({', '.join(given)})")


@app.command()
def delete(name: str, yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask.")] = False) -> None:
    """Delete a project."""
    if not yes:
        typer.confirm(f"Delete project {name}?", abort=True)
    with client() as c:
        c.call(c.projects.DeleteProject, pb.DeleteProjectRequest(name=name))
    console.print(f"[green]Deleted project[/] [bold]{name}[/]")

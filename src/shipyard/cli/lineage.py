"""``shipyard lineage …``, ``shipyard dashboard`` and ``shipyard admin lineage …`` (the admin group is
assembled in ``shipyard.cli.main``)."""

from __future__ import annotations

import time
from typing import Annotated

import typer
from rich.markup import escape
from rich.progress import Progress
from rich.tree import Tree

from shipyard.cli import output
from shipyard.cli.context import client, console
from shipyard.cli.output import Format, OutputOpt
from shipyard.contracts.lineage.v1 import lineage_pb2 as pb

app = typer.Typer(help="Where things came from and what came of them (the provenance graph).",
                  no_args_is_help=True)
admin_lineage = typer.Typer(help="lineage-svc's projections.", no_args_is_help=True)

KINDS = ("run", "dataset", "featureset", "model", "code", "image", "published", "deployment")
FORMATS = ("tree", "json", "yaml", "dot")
_STYLE = {"run": "bold cyan", "code": "magenta", "image": "blue", "published": "bold green",
          "deployment": "bold yellow"}
_SHAPE = {"run": "box", "code": "note", "image": "component", "published": "doubleoctagon",
          "deployment": "house"}


def _node_line(node: pb.Node) -> str:
    style = _STYLE.get(node.kind, "green")
    extra = ""
    if node.kind == "run":
        extra = f" [dim]{escape(node.attributes.get('status', ''))}[/]"
    gone = " [red](deleted)[/]" if node.deleted else ""
    return f"[{style}]{escape(node.label)}[/] [dim]{node.kind}[/]{extra}{gone}"


def as_tree(graph: pb.Graph, upstream: bool) -> Tree:
    """The walk as a tree from the root (a node reached twice is shown once, then named)."""
    nodes = {n.id: n for n in graph.nodes}
    children: dict[str, list[tuple[str, str]]] = {}
    for edge in graph.edges:
        parent, child = (edge.target, edge.source) if upstream else (edge.source, edge.target)
        children.setdefault(parent, []).append((edge.relation, child))
    tree = Tree(_node_line(nodes[graph.root]))
    shown = {graph.root}

    def grow(branch: Tree, node_id: str) -> None:
        for relation, child in sorted(children.get(node_id, []), key=lambda c: nodes[c[1]].label):
            sub = branch.add(f"[dim]{relation}[/] {_node_line(nodes[child])}")
            if child not in shown:
                shown.add(child)
                grow(sub, child)

    grow(tree, graph.root)
    return tree


def _dot_string(*lines: str) -> str:
    """A quoted DOT string of ``lines``: quotes and backslashes escaped, the lines joined by DOT's own
    line break ``\\n`` (not JSON's escapes, which Graphviz would draw as written), text as UTF-8."""
    escaped = (line.replace("\\", "\\\\").replace('"', '\\"').replace("\n", " ") for line in lines)
    return '"' + "\\n".join(escaped) + '"'


def as_dot(graph: pb.Graph) -> str:
    """Graphviz DOT: ``shipyard lineage … --format dot | dot -Tsvg > lineage.svg``."""
    lines = ["digraph lineage {", "  rankdir=LR;", '  node [fontname="Helvetica"];']
    for node in graph.nodes:
        status = f" · {node.attributes['status']}" if "status" in node.attributes else ""
        style = ', style="dashed"' if node.deleted else ""
        bold = ", penwidth=2" if node.id == graph.root else ""
        label = _dot_string(node.label, node.kind + status)
        lines.append(f"  {_dot_string(node.id)} [label={label}, shape={_SHAPE.get(node.kind, 'ellipse')}"
                     f"{style}{bold}];")
    for edge in graph.edges:
        lines.append(f"  {_dot_string(edge.source)} -> {_dot_string(edge.target)} "
                     f"[label={_dot_string(edge.relation)}];")
    lines.append("}")
    return "\n".join(lines)


def _show(kind: str, name: str, down: bool, both: bool, depth: int, form: str) -> None:
    if form not in FORMATS:
        raise typer.BadParameter(f"must be one of {', '.join(FORMATS)}", param_hint="--format")
    direction = pb.DIRECTION_BOTH if both else pb.DIRECTION_DOWNSTREAM if down else pb.DIRECTION_UPSTREAM
    with client() as c:
        graph = c.call(c.lineage.GetLineage, pb.GetLineageRequest(kind=kind, name=name, direction=direction,
                                                                   depth=depth))
    if form in ("json", "yaml"):
        output.emit(graph, Format(form))
    elif form == "dot":
        print(as_dot(graph))
    else:
        if both or not down:
            console.print(as_tree(graph, upstream=True))
        if both or down:
            console.print(as_tree(graph, upstream=False))
        if graph.truncated:
            console.print("[yellow]The walk stopped at the depth limit: --depth N to go further.[/]")


def _lineage_command(kind: str) -> None:
    def show(
        name: Annotated[str, typer.Argument(help="A run's name or id; REPO@VERSION (or REPO: the latest); "
                                                 "CODE@COMMIT; an image; a catalog or deployment name.")],
        down: Annotated[bool, typer.Option("--down", help="Downstream: what came of it.")] = False,
        both: Annotated[bool, typer.Option("--both", help="Upstream and downstream.")] = False,
        depth: Annotated[int, typer.Option(help="Edges to follow (default 10, at most 50).")] = 0,
        form: Annotated[str, typer.Option("--format", "--output", "-o",
                                            help="tree, json, yaml or dot (Graphviz).")] = "tree",
    ) -> None:
        _show(kind, name, down, both, depth, form)

    show.__doc__ = f"The lineage of a {kind}: upstream by default (where it came from)."
    app.command(kind)(show)


for _kind in KINDS:
    _lineage_command(_kind)


@app.command()
def export(
    openlineage: Annotated[bool, typer.Option("--openlineage", help="As OpenLineage RunEvents (the only "
                                                                   "format for now).")] = True,
    project: Annotated[str, typer.Option(help="Only this project's runs.")] = "",
    namespace: Annotated[str, typer.Option(help="OpenLineage namespace of jobs and datasets.")] = "shipyard",
) -> None:
    """Every run as OpenLineage RunEvents (START, COMPLETE/FAIL/ABORT), one JSON per line: pipe them
    into Marquez or any OpenLineage consumer."""
    token = ""
    with client() as c:
        while True:
            page = c.call(c.lineage.ExportOpenLineage, pb.ExportOpenLineageRequest(
                project=project, page_size=500, page_token=token, namespace=namespace))
            for event in page.events:
                print(event)
            token = page.next_page_token
            if not token:
                return


def dashboard(project: Annotated[str, typer.Option(help="One project; all when omitted.")] = "",
              recent: Annotated[int, typer.Option(help="How many recent jobs.")] = 10,
              fmt: OutputOpt = Format.table) -> None:
    """Recent jobs, runs by status, GPUs in use, repos and deployments."""
    with client() as c:
        view = c.call(c.lineage.GetDashboard, pb.GetDashboardRequest(project=project, recent=recent))
    if output.emit(view, fmt):
        return
    console.print(f"[bold]{escape(project) or 'All Projects'}[/]")
    counts = output.table("Runs by status", "", box=None)
    total = sum(view.runs_by_status.values()) or 1
    for status, count in view.runs_by_status.items():
        counts.add_row(status, f"{count:>6}  [cyan]{'█' * round(30 * count / total)}[/]")
    console.print(counts)
    console.print(f"GPUs in use: [bold]{view.gpus_in_use}[/]   asked for by queued runs: {view.gpus_queued}")
    console.print("Repos: " + ", ".join(f"{k} {v}" for k, v in view.repos_by_kind.items())
                  + f"   Published models: {view.published_models}   Deployments: {view.deployments}")
    jobs = output.table("Recent jobs", "Kind", "Status", "Project", "Updated", "Link")
    for job in view.recent_jobs:
        jobs.add_row(escape(job.name), job.subtype or job.kind, job.status, escape(job.project),
                     job.update_time.ToDatetime().strftime("%Y-%m-%d %H:%M:%S"), job.link)
    console.print(jobs if view.recent_jobs else "[dim]No jobs yet: shipyard run submit …[/]")


def _status_line(status: pb.ProjectionStatus) -> str:
    return (f"last event {status.last_sequence}: {status.nodes} nodes, {status.edges} edges, "
            f"{status.activities} activities" + (f", digest {status.digest[:16]}" if status.digest else ""))


@admin_lineage.command("status")
def lineage_status(digest: Annotated[bool, typer.Option(help="Also the digest of the whole graph.")] = False,
                   fmt: OutputOpt = Format.table) -> None:
    """What lineage-svc's projections hold."""
    with client() as c:
        status = c.call(c.lineage.GetProjectionStatus, pb.GetProjectionStatusRequest(digest=digest))
    if output.emit(status, fmt):
        return
    console.print(_status_line(status) + (" [yellow](rebuilding)[/]" if status.rebuilding else ""))


@admin_lineage.command()
def rebuild(wait: Annotated[bool, typer.Option(help="Wait until the replay has caught up.")] = True) -> None:
    """Drop lineage-svc's projections and build them again from the whole event stream."""
    with client() as c:
        status = c.call(c.lineage.Rebuild, pb.RebuildRequest())
        if not wait:
            console.print("Rebuild started: shipyard admin lineage status")
            return
        with Progress(console=console, transient=True) as progress:
            task = progress.add_task("replaying the event stream", total=None)
            while status.rebuilding:
                time.sleep(0.5)
                status = c.call(c.lineage.GetProjectionStatus, pb.GetProjectionStatusRequest())
                progress.update(task, description=f"replaying: event {status.last_sequence}")
    console.print("[green]Rebuilt:[/] " + _status_line(status))

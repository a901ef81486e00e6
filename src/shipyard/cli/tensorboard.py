"""``shipyard tensorboard start|stop|status RUN``: a run's TensorBoard, through the gateway."""

from __future__ import annotations

import typer
from rich.markup import escape

from shipyard.cli import output
from shipyard.cli.context import client, console
from shipyard.cli.output import Format, OutputOpt
from shipyard.client.connection import Client
from shipyard.contracts.gateway.v1 import gateway_pb2
from shipyard.contracts.run.v1 import runs_pb2 as pb

app = typer.Typer(help="TensorBoard for a run's SHIPYARD_TB_LOGDIR, served through the gateway.",
                  no_args_is_help=True)


def _url(c: Client, board: pb.TensorBoard) -> str:
    """The board's address on the gateway's HTTP side."""
    status = c.call(c.platform.GetStatus, gateway_pb2.GetStatusRequest())
    base = status.blob_url.removesuffix("/api/blobs") if status.blob_url else ""
    return f"{base}{board.path}"


def _show(c: Client, board: pb.TensorBoard) -> None:
    state = pb.TensorBoardState.Name(board.state).removeprefix("TENSORBOARD_STATE_").lower()
    if board.state == pb.TENSORBOARD_STATE_RUNNING:
        console.print(f"TensorBoard of [bold]{escape(board.run)}[/] is running: {_url(c, board)}")
        console.print("[dim]In a browser, add ?token=YOUR_TOKEN once (it is kept in a cookie); "
                      "with curl, send -H 'Authorization: Bearer YOUR_TOKEN'.[/]")
    else:
        console.print(f"TensorBoard of [bold]{escape(board.run)}[/] is {state}")


@app.command()
def start(run: str) -> None:
    """Start the run's TensorBoard (running or finished runs alike)."""
    with client() as c:
        _show(c, c.call(c.runs.StartTensorBoard, pb.TensorBoardRequest(name=run)))


@app.command()
def stop(run: str) -> None:
    """Stop the run's TensorBoard."""
    with client() as c:
        _show(c, c.call(c.runs.StopTensorBoard, pb.TensorBoardRequest(name=run)))


@app.command()
def status(run: str, fmt: OutputOpt = Format.table) -> None:
    """Whether the run's TensorBoard runs, and where."""
    with client() as c:
        board = c.call(c.runs.GetTensorBoard, pb.TensorBoardRequest(name=run))
        if not output.emit(board, fmt):
            _show(c, board)

"""What every subcommand shares: the client, and how errors are shown."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import typer
from rich.markup import escape

from shipyard.cli.output import console_for
from shipyard.client.connection import Client, ClientError, TransferError, resolve_credentials

console = console_for()
errors = console_for(stderr=True)


def said(exc: ClientError | TransferError) -> str:
    """What the server said of a failed call: ``name: must be …`` (the field and the problem as the
    status details name them) for a bad request, its message otherwise."""
    if isinstance(exc, ClientError) and exc.field:
        return f"{exc.field}: {exc.problem}"
    return exc.message


@contextmanager
def client() -> Iterator[Client]:
    """A client from the saved login or the environment; errors become a message and exit 1."""
    connection = Client(resolve_credentials())
    try:
        yield connection
    except (ClientError, TransferError) as exc:
        errors.print(f"[bold red]{exc.code}[/]: {escape(said(exc))}", soft_wrap=True)
        raise typer.Exit(1) from None
    finally:
        connection.close()

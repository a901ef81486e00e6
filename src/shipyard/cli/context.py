"""What every subcommand shares: the client, and how errors are shown."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import typer
from rich.console import Console
from rich.markup import escape

from shipyard.client.connection import Client, ClientError, resolve_credentials
from shipyard.client.transfer import TransferError

console = Console()
errors = Console(stderr=True)


@contextmanager
def client() -> Iterator[Client]:
    """A client from the saved login or the environment; errors become a message and exit 1."""
    connection = Client(resolve_credentials())
    try:
        yield connection
    except (ClientError, TransferError) as exc:
        errors.print(f"[bold red]{exc.code}[/]: {escape(exc.message)}", soft_wrap=True)
        raise typer.Exit(1) from None
    finally:
        connection.close()

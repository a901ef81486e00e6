"""What every subcommand shares: the client, and how errors are shown."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import typer
from rich.console import Console

from shipyard.client.connection import Client, ClientError, resolve_credentials

console = Console()
errors = Console(stderr=True)


@contextmanager
def client() -> Iterator[Client]:
    """A client from the saved login or the environment; errors become a message and exit 1."""
    connection = Client(resolve_credentials())
    try:
        yield connection
    except ClientError as exc:
        errors.print(f"[bold red]{exc.code}[/]: {exc.message}")
        raise typer.Exit(1) from None
    finally:
        connection.close()

"""``shipyard admin gc``: delete the blobs nothing references (operators)."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from shipyard.cli.context import client, console
from shipyard.contracts.repo.v1 import repos_pb2
from shipyard.kit.units import human_size


def collect_garbage(
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Delete nothing; show what would be deleted.")]
    = False,
) -> None:
    """Delete the blobs no version or code snapshot references, unused for SHIPYARD_GC_GRACE_S."""
    with client() as c:
        # A large store takes a while: the gateway's deadline for the call is the limit.
        done = c.call(c.repos.CollectGarbage, repos_pb2.CollectGarbageRequest(dry_run=dry_run), timeout=3600)
    table = Table(title="Garbage collection (dry run: nothing deleted)" if done.dry_run
                  else "Garbage collection")
    table.add_column("blobs")
    table.add_column("count", justify="right")
    table.add_column("size", justify="right")
    deleted = "would be deleted" if done.dry_run else "deleted"
    table.add_row(f"{deleted} (unreferenced)", f"{done.deleted_blobs:,}", human_size(done.deleted_bytes))
    table.add_row("kept: referenced", f"{done.referenced_blobs:,}", human_size(done.referenced_bytes))
    table.add_row(f"kept: used within the grace period ({done.grace_seconds:,.0f} s)",
                  f"{done.recent_blobs:,}", human_size(done.recent_bytes))
    console.print(table)

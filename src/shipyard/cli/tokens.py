"""``shipyard token …``: your API tokens (an operator's: anyone's)."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Annotated

import typer
from google.protobuf.duration_pb2 import Duration
from google.protobuf.timestamp_pb2 import Timestamp
from rich.markup import escape

from shipyard.cli import output
from shipyard.cli.context import client, console
from shipyard.cli.output import Format, OutputOpt
from shipyard.contracts.gateway.v1 import gateway_pb2 as pb

app = typer.Typer(help="API tokens: make, list and revoke them.", no_args_is_help=True)

_SPAN = re.compile(r"(\d+)([dhm])")
_UNIT = {"d": timedelta(days=1), "h": timedelta(hours=1), "m": timedelta(minutes=1)}


def parse_lifetime(text: str) -> timedelta:
    """``30d``, ``12h`` or ``90m`` as a timedelta; BadParameter otherwise."""
    match = _SPAN.fullmatch(text.strip())
    if match is None or int(match.group(1)) == 0:
        raise typer.BadParameter("a number and d, h or m, e.g. 30d, 12h", param_hint="--ttl")
    return int(match.group(1)) * _UNIT[match.group(2)]


def _when(stamp: Timestamp, unset: str) -> str:
    if stamp.seconds == 0 and stamp.nanos == 0:
        return unset
    return stamp.ToDatetime().strftime("%Y-%m-%d %H:%M")


@app.command()
def create(description: Annotated[str, typer.Option(help="What the token is for.")] = "",
           ttl: Annotated[str | None, typer.Option(
               help="Lifetime, e.g. 30d or 12h (default: the platform's, 30 days; at most its cap, "
                    "90 days).")] = None) -> None:
    """Make an API token for yourself; prints it once."""
    request = pb.CreateTokenRequest(description=description)
    if ttl is not None:
        lifetime = Duration()
        lifetime.FromTimedelta(parse_lifetime(ttl))
        request.ttl.CopyFrom(lifetime)
    with client() as c:
        reply = c.call(c.identity.CreateToken, request)
    console.print(f"[green]Created token[/] [bold]{reply.token.id}[/], expires "
                  f"{_when(reply.token.expire_time, 'never')} UTC. The token (shown once):")
    print(reply.secret)


@app.command("list")
def list_(user: Annotated[str, typer.Option(help="Another user's tokens (operators).")] = "",
          all_users: Annotated[bool, typer.Option("--all", help="Everyone's tokens (operators).")] = False,
          fmt: OutputOpt = Format.table) -> None:
    """Your tokens: id, kind, what for, created, expires, last used (never the secret)."""
    with client() as c:
        reply = c.call(c.identity.ListTokens, pb.ListTokensRequest(user=user, all_users=all_users))
    if output.emit(list(reply.tokens), fmt):
        return
    table = output.table("Id", "User", "Kind", "Description", "Created", "Expires", "Last used")
    for t in reply.tokens:
        kind = pb.TokenKind.Name(t.kind).removeprefix("TOKEN_KIND_").lower()
        table.add_row(t.id, t.user, kind, escape(t.description), _when(t.create_time, "—"),
                      _when(t.expire_time, "never"), _when(t.last_use_time, "never"))
    console.print(table)


@app.command()
def revoke(token_id: Annotated[str, typer.Argument(metavar="ID", help="Its id (token list).")]) -> None:
    """Revoke a token of yours (an operator: anyone's); it stops working within seconds everywhere."""
    with client() as c:
        c.call(c.identity.RevokeToken, pb.RevokeTokenRequest(id=token_id))
    console.print(f"[green]Revoked token[/] [bold]{token_id}[/].")

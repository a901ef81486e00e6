"""``shipyard user …``"""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from shipyard.cli.context import client, console
from shipyard.contracts.gateway.v1 import gateway_pb2 as pb

app = typer.Typer(help="Users and their roles (operators only).", no_args_is_help=True)

ROLE = {"operator": pb.ROLE_OPERATOR, "data-scientist": pb.ROLE_DATA_SCIENTIST,
        "ml-engineer": pb.ROLE_ML_ENGINEER, "production-engineer": pb.ROLE_PRODUCTION_ENGINEER}


def role_name(role: int) -> str:
    """A role as users write it."""
    return pb.Role.Name(role).removeprefix("ROLE_").lower().replace("_", "-")


@app.command()
def create(name: str,
           role: Annotated[list[str], typer.Option(help=f"One of {', '.join(ROLE)} (repeatable).")],
           display_name: Annotated[str, typer.Option()] = "") -> None:
    """Create a user; prints its first API token once."""
    unknown = [r for r in role if r not in ROLE]
    if unknown:
        raise typer.BadParameter(f"unknown role {unknown[0]!r}; known: {', '.join(ROLE)}",
                                 param_hint="--role")
    with client() as c:
        reply = c.call(c.identity.CreateUser, pb.CreateUserRequest(user=pb.User(
            name=name, display_name=display_name, roles=[ROLE[r] for r in role])))
    console.print(f"[green]Created user[/] [bold]{reply.user.name}[/]. Their token (shown once):")
    print(reply.token)


@app.command("list")
def list_() -> None:
    """List users."""
    with client() as c:
        reply = c.call(c.identity.ListUsers, pb.ListUsersRequest())
    table = Table("Name", "Display name", "Roles", "Created")
    for u in reply.users:
        table.add_row(u.name, u.display_name, ", ".join(role_name(r) for r in u.roles),
                      u.create_time.ToDatetime().strftime("%Y-%m-%d %H:%M"))
    console.print(table)

"""``shipyard user …``"""

from __future__ import annotations

from typing import Annotated

import typer

from shipyard.cli import output
from shipyard.cli.context import client, console
from shipyard.cli.output import Format, OutputOpt
from shipyard.contracts.gateway.v1 import gateway_pb2 as pb

app = typer.Typer(help="Users, their roles, disabling and deleting them (operators only).",
                  no_args_is_help=True)

ROLE = {"operator": pb.ROLE_OPERATOR, "data-scientist": pb.ROLE_DATA_SCIENTIST,
        "ml-engineer": pb.ROLE_ML_ENGINEER, "production-engineer": pb.ROLE_PRODUCTION_ENGINEER}


def role_name(role: int) -> str:
    """A role as users write it."""
    return pb.Role.Name(role).removeprefix("ROLE_").lower().replace("_", "-")


def _roles(role: list[str]) -> list[pb.Role]:
    unknown = [r for r in role if r not in ROLE]
    if unknown:
        raise typer.BadParameter(f"unknown role {unknown[0]!r}; known: {', '.join(ROLE)}",
                                 param_hint="--role")
    return [ROLE[r] for r in role]


@app.command()
def create(name: str,
           role: Annotated[list[str], typer.Option(help=f"One of {', '.join(ROLE)} (repeatable).")],
           display_name: Annotated[str, typer.Option()] = "") -> None:
    """Create a user; prints its first API token once."""
    user = pb.User(name=name, display_name=display_name, roles=_roles(role))
    with client() as c:
        reply = c.call(c.identity.CreateUser, pb.CreateUserRequest(user=user))
    console.print(f"[green]Created user[/] [bold]{reply.user.name}[/]. Their token (shown once):")
    print(reply.token)


@app.command("list")
def list_(fmt: OutputOpt = Format.table) -> None:
    """List users."""
    with client() as c:
        reply = c.call(c.identity.ListUsers, pb.ListUsersRequest())
    if output.emit(list(reply.users), fmt):
        return
    table = output.table("Name", "Display name", "Roles", "Created", "State")
    for u in reply.users:
        table.add_row(u.name, u.display_name, ", ".join(role_name(r) for r in u.roles),
                      u.create_time.ToDatetime().strftime("%Y-%m-%d %H:%M"),
                      "[red]disabled[/]" if u.disabled else "enabled")
    console.print(table)


def _show(user: pb.User, what: str) -> None:
    roles = ", ".join(role_name(r) for r in user.roles)
    console.print(f"[green]{what}[/] [bold]{user.name}[/] ({roles}){' — disabled' if user.disabled else ''}")


@app.command()
def roles(name: str,
          role: Annotated[list[str], typer.Option(help=f"One of {', '.join(ROLE)} (repeatable).")]) -> None:
    """Replace a user's roles; their next call has the new rights."""
    request = pb.SetUserRolesRequest(name=name, roles=_roles(role))
    with client() as c:
        _show(c.call(c.identity.SetUserRoles, request), "Roles of")


@app.command()
def disable(name: str) -> None:
    """Disable a user: their tokens stop working at once; what they made stays."""
    with client() as c:
        _show(c.call(c.identity.DisableUser, pb.DisableUserRequest(name=name)), "Disabled")


@app.command()
def enable(name: str) -> None:
    """Enable a disabled user again: their tokens that have not expired work again."""
    with client() as c:
        _show(c.call(c.identity.EnableUser, pb.EnableUserRequest(name=name)), "Enabled")


@app.command()
def delete(name: str,
           yes: Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation.")] = False) -> None:
    """Delete a user and revoke their tokens. What they made stays, owned by their name, which is
    never given to a new user."""
    if not yes:
        typer.confirm(f"Delete user {name} and revoke their tokens?", abort=True)
    with client() as c:
        reply = c.call(c.identity.DeleteUser, pb.DeleteUserRequest(name=name))
    console.print(f"[green]Deleted user[/] [bold]{name}[/]; revoked {reply.revoked_tokens} token(s). "
                  "What they made stays, under their name.")

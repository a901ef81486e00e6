"""``shipyard credential …``: secrets for private sources, stored encrypted by the platform."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from shipyard.cli import output
from shipyard.cli.context import client, console
from shipyard.cli.output import Format, OutputOpt
from shipyard.contracts.repo.v1 import credentials_pb2 as pb

app = typer.Typer(help="Credentials for private git repos, buckets and databases.", no_args_is_help=True)
TYPES = {
    "password": pb.CREDENTIAL_TYPE_PASSWORD,
    "token": pb.CREDENTIAL_TYPE_TOKEN,
    "ssh-key": pb.CREDENTIAL_TYPE_SSH_KEY,
    "access-key": pb.CREDENTIAL_TYPE_ACCESS_KEY,
    "gcp-key": pb.CREDENTIAL_TYPE_GCP_KEY,
    "kubeconfig": pb.CREDENTIAL_TYPE_KUBECONFIG,
}
TypeOpt = Annotated[str, typer.Option("--type", help=f"One of {', '.join(TYPES)}.")]


def _type(name: str) -> pb.CredentialType:
    if name not in TYPES:
        raise typer.BadParameter(f"--type must be one of {', '.join(TYPES)}")
    return TYPES[name]


def read_secret(secret_file: Path | None, stdin: bool) -> str:
    """The secret from a file, standard input or a hidden prompt: never from the command line,
    where it would land in the shell's history and the process list."""
    if secret_file is not None:
        return secret_file.read_text().strip("\n")
    if stdin:
        return sys.stdin.read().strip("\n")
    return str(typer.prompt("Secret", hide_input=True))


@app.command()
def save(
    name: str,
    kind: TypeOpt,
    host: Annotated[str, typer.Option(help="e.g. github.com")] = "",
    username: Annotated[str, typer.Option()] = "",
    secret_file: Annotated[
        Path | None, typer.Option(help="Read the secret (e.g. a private key) here.")
    ] = None,
    stdin: Annotated[bool, typer.Option("--stdin", help="Read the secret from standard input.")] = False,
) -> None:
    """Save (or replace) a credential; sources name it with --credential."""
    secret = read_secret(secret_file, stdin)
    with client() as c:
        saved = c.call(
            c.saved_credentials.SaveCredential,
            pb.SaveCredentialRequest(
                credential=pb.Credential(name=name, type=_type(kind), host=host, username=username),
                secret=secret,
            ),
        )
    console.print(f"[green]Saved credential[/] [bold]{saved.name}[/] ({saved.fingerprint})")


@app.command("list")
def list_(host: Annotated[str, typer.Option()] = "", fmt: OutputOpt = Format.table) -> None:
    """List your credentials (never their secrets)."""
    with client() as c:
        reply = c.call(c.saved_credentials.ListCredentials, pb.ListCredentialsRequest(host=host))
    if output.emit(list(reply.credentials), fmt):
        return
    table = output.table("Name", "Type", "Host", "Username", "Fingerprint", "Updated")
    names = {number: name for name, number in TYPES.items()}
    for cred in reply.credentials:
        table.add_row(
            cred.name,
            names.get(cred.type, "?"),
            cred.host,
            cred.username,
            cred.fingerprint,
            cred.update_time.ToDatetime().strftime("%Y-%m-%d %H:%M"),
        )
    console.print(table if table.row_count else "[dim]No credentials saved.[/]")


@app.command()
def last(host: Annotated[str, typer.Option()], kind: TypeOpt, fmt: OutputOpt = Format.table) -> None:
    """The credential you saved last for a host and type (what forms pre-fill)."""
    with client() as c:
        cred = c.call(
            c.saved_credentials.GetLastCredential, pb.GetLastCredentialRequest(host=host, type=_type(kind))
        )
    if output.emit(cred, fmt):
        return
    console.print(f"{cred.name} ({cred.username or 'no username'}, {cred.fingerprint})")


@app.command()
def delete(name: str) -> None:
    """Delete one of your credentials."""
    with client() as c:
        c.call(c.saved_credentials.DeleteCredential, pb.DeleteCredentialRequest(name=name))
    console.print(f"[green]Deleted credential[/] [bold]{name}[/]")

"""The NATS server's users: one per service and the observer, with the permissions of
shipyard.kit.bus_access, written as a nats-server configuration file.

``shipyard up`` keeps each user's password in the data directory (made on first start, mode 600,
like the secret key) and writes the configuration at each start with bcrypt hashes of them; each
service gets only its own password, in its environment. The Kubernetes manifests use the same
configuration with the passwords taken from the server's environment (a Secret).
"""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from Crypto.Protocol.KDF import bcrypt

from shipyard.kit.bus_access import USERS, BusPermissions, permissions

# 192 random bits: no cost factor is needed against guessing; the hash only keeps the passwords out
# of the configuration file, and a low cost keeps the server's check of each new connection cheap.
PASSWORD_BYTES = 24
BCRYPT_COST = 8


@dataclass(frozen=True)
class FromEnvironment:
    """A password the NATS server reads from its environment variable ``name`` (deploy/)."""

    name: str


Password = str | FromEnvironment


class UnreadablePasswords(RuntimeError):
    """The password file is there but is not what ``shipyard up`` writes."""


def load_passwords(path: Path) -> dict[str, str]:
    """Every bus user's password from ``path``; users without one get a new random one, saved
    (mode 600) before this returns, so a restart keeps them."""
    try:
        stored = json.loads(path.read_text())
    except FileNotFoundError:
        stored = {}
    except (OSError, json.JSONDecodeError) as exc:
        raise UnreadablePasswords(f"{path}: {exc}; delete it to make new NATS passwords") from None
    if not isinstance(stored, dict) or not all(isinstance(v, str) and v for v in stored.values()):
        raise UnreadablePasswords(f"{path}: not a JSON object of user names to passwords; delete it "
                                  "to make new NATS passwords")
    passwords = {user: stored.get(user) or secrets.token_urlsafe(PASSWORD_BYTES) for user in USERS}
    if passwords != stored:
        write_private(path, json.dumps(passwords, indent=2) + "\n")
    return passwords


def write_private(path: Path, text: str) -> None:
    """Replace ``path`` with ``text``, readable by this user only (never briefly wider)."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(text)
    tmp.replace(path)


def hashed(password: str) -> str:
    """The bcrypt hash of ``password`` that nats-server accepts in place of it."""
    return bcrypt(password, BCRYPT_COST).decode()


def _string(value: str) -> str:
    # A JSON string is a quoted string of the NATS configuration format (no variables inside).
    return json.dumps(value)


def _subjects(key: str, subjects: tuple[str, ...], indent: str) -> list[str]:
    inner = indent + "  "
    return [f"{indent}{key}: [", *(f"{inner}{_string(s)}" for s in subjects), f"{indent}]"]


def _permissions(rights: BusPermissions, indent: str) -> list[str]:
    inner = indent + "  "
    publish = _subjects("allow", rights.publish, inner + "  ")
    if rights.deny_publish:
        publish += _subjects("deny", rights.deny_publish, inner + "  ")
    return [f"{indent}permissions: {{", f"{inner}publish: {{", *publish, f"{inner}}}",
            f"{inner}subscribe: {{", *_subjects("allow", rights.subscribe, inner + "  "), f"{inner}}}",
            f"{indent}}}"]


def _password(password: Password) -> str:
    if isinstance(password, FromEnvironment):
        return f"${password.name}"
    return _string(hashed(password))


def render(passwords: Mapping[str, Password]) -> str:
    """The ``authorization`` block of a nats-server configuration: every bus user, its password
    (hashed, or a variable of the server's environment) and its permissions. No anonymous user."""
    missing = [user for user in USERS if user not in passwords]
    if missing:
        raise ValueError(f"no password for the bus users {', '.join(missing)}")
    lines = ["# The bus users of Shipyard (shipyard.kit.bus_access). Generated: do not edit.",
             "authorization {", "  users = ["]
    for user in USERS:
        lines += ["    {", f"      user: {_string(user)}", f"      password: {_password(passwords[user])}",
                  *_permissions(permissions(user), "      "), "    }"]
    return "\n".join([*lines, "  ]", "}"]) + "\n"


def password_variable(user: str) -> str:
    """The NATS server's environment variable that holds ``user``'s password (deploy/):
    ``NATS_REPO_SVC_PASSWORD`` for repo-svc (a variable's name has no dash)."""
    return f"NATS_{user.upper().replace('-', '_')}_PASSWORD"


def deploy_config() -> str:
    """The configuration of deploy/'s NATS server: the passwords from its environment."""
    return render({user: FromEnvironment(password_variable(user)) for user in USERS})


__all__ = ["BCRYPT_COST", "PASSWORD_BYTES", "FromEnvironment", "Password", "UnreadablePasswords",
           "deploy_config", "hashed", "load_passwords", "password_variable", "render", "write_private"]

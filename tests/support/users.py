"""Users for whole-stack tests: made by the first admin, signed in with their first token."""

from __future__ import annotations

from shipyard.client.connection import Client
from shipyard.contracts.gateway.v1 import gateway_pb2
from shipyard.local.harness import Stack


def new_user(admin: Client, name: str, *roles: int) -> str:
    """Make user ``name`` with ``roles`` (default: data scientist); their first API token."""
    made = admin.call(admin.identity.CreateUser, gateway_pb2.CreateUserRequest(user=gateway_pb2.User(
        name=name, roles=list(roles) or [gateway_pb2.ROLE_DATA_SCIENTIST])))
    return str(made.token)


def signed_in(stack: Stack, admin: Client, name: str, *roles: int) -> Client:
    """A client of the stack signed in as a new user ``name`` (default: a data scientist)."""
    return stack.client(new_user(admin, name, *roles))

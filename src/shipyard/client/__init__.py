"""A Python client of the Shipyard gateway (what the CLI uses, and users may too)."""

from shipyard.client.connection import Client, ClientError, resolve_credentials

__all__ = ["Client", "ClientError", "resolve_credentials"]

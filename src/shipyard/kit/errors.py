"""Domain errors. Services raise these; the gRPC edge maps each to one status code, once."""

from __future__ import annotations


class ShipyardError(Exception):
    """Base of every error a caller can be told about."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidArgument(ShipyardError):
    """A request field is wrong; ``field`` names it."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field}: {problem}")
        self.field = field
        self.problem = problem


class NotFound(ShipyardError):
    """The named resource does not exist."""


class AlreadyExists(ShipyardError):
    """A resource with that unique key exists already."""


class FailedPrecondition(ShipyardError):
    """The system is not in a state that allows the operation."""


class Aborted(ShipyardError):
    """A concurrent change won (optimistic concurrency); read again and retry."""


class PermissionDenied(ShipyardError):
    """The caller is known but may not do this."""


class Unauthenticated(ShipyardError):
    """The caller could not be identified."""


class ResourceExhausted(ShipyardError):
    """A quota or limit was reached."""


class Unavailable(ShipyardError):
    """A dependency is down; retrying later may succeed."""

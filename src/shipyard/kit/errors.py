"""Domain errors. Services raise these; the gRPC edge maps each to one status code, once."""

from __future__ import annotations

import errno

# Characters of an error message a caller is told. Messages travel as gRPC status details, in
# trailers that allow 8 KiB of metadata in all (percent-encoded: up to 12 bytes a character), so
# a value echoed into a message (a 1 MB name) is cut here, once, for every service.
MAX_MESSAGE = 500


def clipped(text: str, limit: int = MAX_MESSAGE) -> str:
    """``text``, or when longer than ``limit`` characters its start and end around an ellipsis that
    says how much was left out: a message keeps what it is about and what is wrong."""
    if len(text) <= limit:
        return text
    head, tail = text[: limit // 2], text[len(text) - limit // 4 :]
    return f"{head}…[{len(text) - len(head) - len(tail)} of {len(text)} characters left out]…{tail}"


class ShipyardError(Exception):
    """Base of every error a caller can be told about; its message is clipped to MAX_MESSAGE."""

    def __init__(self, message: str) -> None:
        message = clipped(message)
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
    """The system is not in a state that allows the operation; ``field``, when set, names the
    request field whose value the state refuses (``run.gpus``: more GPUs than the machine has)."""

    def __init__(self, message: str, field: str = "") -> None:
        super().__init__(f"{field}: {message}" if field else message)
        self.field = field
        self.problem = message  # what is wrong with the field's value, without its name


class Aborted(ShipyardError):
    """A concurrent change won (optimistic concurrency); read again and retry."""


class PermissionDenied(ShipyardError):
    """The caller is known but may not do this."""


class Unauthenticated(ShipyardError):
    """The caller could not be identified."""


class ResourceExhausted(ShipyardError):
    """A quota or limit was reached."""


class NoSpace(ResourceExhausted, OSError):
    """The disk (or the platform user's quota) is full: "no space left on device while writing …".

    Also the OSError it stands for (ENOSPC or EDQUOT), so that code handling a full disk as an
    OSError (the HTTP edge's 507) goes on doing so, now with a message that names what was written.
    """

    def __init__(self, writing: str, code: int = errno.ENOSPC) -> None:
        ResourceExhausted.__init__(self, f"no space left on device while writing {writing}")
        self.errno = code
        self.strerror = self.message

    def __str__(self) -> str:
        return self.message


def out_of_space(exc: BaseException, writing: str) -> NoSpace | None:
    """NoSpace naming ``writing`` when ``exc`` says the disk or a quota is full; None otherwise."""
    if isinstance(exc, NoSpace):
        return exc
    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return NoSpace(writing, exc.errno)
    return None


class Unavailable(ShipyardError):
    """A dependency is down; retrying later may succeed."""

"""The caller of a use case: who, with which roles (pure; the gRPC edge builds it)."""

from __future__ import annotations

from dataclasses import dataclass

USER_KEY = "x-shipyard-user"
ROLES_KEY = "x-shipyard-roles"


@dataclass(frozen=True)
class Caller:
    """The authenticated user on whose behalf a call runs (set by the gateway)."""

    user: str
    roles: frozenset[str]

    def has(self, role: str) -> bool:
        """Whether the caller holds ``role``."""
        return role in self.roles

    def metadata(self) -> tuple[tuple[str, str], ...]:
        """As gRPC metadata, for forwarding to a service."""
        return ((USER_KEY, self.user), (ROLES_KEY, ",".join(sorted(self.roles))))

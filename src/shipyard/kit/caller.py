"""The caller of a use case: who, with which roles (pure; the gRPC edge builds it)."""

from __future__ import annotations

from dataclasses import dataclass

OPERATOR = "operator"
"""The role that runs the platform: it may see and manage everyone's work."""


@dataclass(frozen=True)
class Caller:
    """The authenticated user on whose behalf a call runs.

    The gateway authenticates users; between the platform's processes the caller travels in a
    signed assertion (``shipyard.kit.assertions``), never as plain metadata.
    """

    user: str
    roles: frozenset[str]

    def has(self, role: str) -> bool:
        """Whether the caller holds ``role``."""
        return role in self.roles

    @property
    def is_operator(self) -> bool:
        """Whether the caller is an operator."""
        return OPERATOR in self.roles

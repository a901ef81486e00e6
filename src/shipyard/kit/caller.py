"""The caller of a use case: who, with which roles (pure; the gRPC edge builds it)."""

from __future__ import annotations

from dataclasses import dataclass, field

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
    # The run whose token made the call (SHIPYARD_TOKEN / MLFLOW_TRACKING_TOKEN inside a run): it
    # may write that run's tracking data only. Empty for a person's own token.
    run_id: str = ""
    # The platform service that signed the call's assertion (``gateway`` for users' calls,
    # ``run-svc`` when run-svc calls on a user's behalf): some facts are taken only from one.
    via: str = field(default="", compare=False)

    def has(self, role: str) -> bool:
        """Whether the caller holds ``role``."""
        return role in self.roles

    @property
    def is_operator(self) -> bool:
        """Whether the caller is an operator."""
        return OPERATOR in self.roles

"""A user's own login to a cluster where each user signs in (``cluster add --login-required``): their
stored ssh-key credential of a reserved name, which ``shipyard cluster login`` saves and run-svc opens
when it submits that user's runs there (repo-svc lends a secret to run-svc alone)."""

from __future__ import annotations

PREFIX = "cluster-"


def login_credential(cluster: str) -> str:
    """The name of a user's stored login to ``cluster``."""
    return f"{PREFIX}{cluster}"

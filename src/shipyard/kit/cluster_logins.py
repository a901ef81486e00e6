"""A user's own login to a cluster where each user signs in (``cluster add --login-required``): their
stored credential of a reserved name — an ssh-key, or a token (their JWT) for a cluster reached through
slurmrestd — which ``shipyard cluster login`` saves and run-svc opens when it submits that user's runs
there (repo-svc lends a secret to run-svc alone)."""

from __future__ import annotations

PREFIX = "cluster-"
JWT_PREFIX = "SLURM_JWT="  # what `scontrol token` prints before the token itself


def login_credential(cluster: str) -> str:
    """The name of a user's stored login to ``cluster``."""
    return f"{PREFIX}{cluster}"


def slurm_token(text: str) -> str:
    """A Slurm JWT as a user pastes it: what ``scontrol token`` prints (``SLURM_JWT=…``), or the token."""
    return text.strip().removeprefix(JWT_PREFIX).strip()

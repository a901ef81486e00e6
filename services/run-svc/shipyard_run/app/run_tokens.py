"""Who a run's API token acts for: its owner, with the roles recorded at submit, while it is active."""

from __future__ import annotations

from dataclasses import dataclass

from shipyard.kit.errors import Unauthenticated
from shipyard_run.app.ports import Units
from shipyard_run.domain.run_tokens import matches, parse_run_token
from shipyard_run.domain.runs import Run


@dataclass
class RunTokens:
    """Verifies the tokens runs get in SHIPYARD_TOKEN (the gateway asks)."""

    uow: Units

    async def verify(self, token: str) -> Run:
        """The run whose token ``token`` is, while it is starting, running or stopping;
        Unauthenticated when it is no run's token, or the run is not active."""
        run_id, secret = parse_run_token(token)
        async with self.uow() as uow:
            run = await uow.runs.by_id(run_id)
        if run is None or not matches(run.token_hash, secret):
            raise Unauthenticated("the run token is not valid (no run has it)")
        if run.status.final:
            raise Unauthenticated(f"the run {run.name!r} has ended: its token no longer works")
        if not run.active:
            raise Unauthenticated(f"the run {run.name!r} is not running: its token does not work")
        return run

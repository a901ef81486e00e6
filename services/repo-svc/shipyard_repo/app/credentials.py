"""Credential use cases: save (encrypted), list, the last one per host and type, delete, and open
one for run-svc or serving-svc."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from shipyard.kit.caller import Caller
from shipyard.kit.clock import Clock, utc_now
from shipyard.kit.errors import InvalidArgument, NotFound, PermissionDenied
from shipyard.kit.secrets import SecretBox
from shipyard_repo.app.ports import Units
from shipyard_repo.app.versions import RUN_RECORDER
from shipyard_repo.domain.credentials import Credential, CredentialFields, CredentialType

log = logging.getLogger(__name__)
# The services a stored secret is lent to: run-svc (the same one repo-svc takes a run's facts from,
# versions.py) and serving-svc (a cluster's kubeconfig, for KServe).
OPENERS = frozenset({RUN_RECORDER, "serving-svc"})


@dataclass
class Credentials:
    """Each user's own credentials; secrets go in sealed and come out only through ``reveal``."""

    uow: Units
    box: SecretBox
    clock: Clock = utc_now

    async def save(self, caller: Caller, fields: CredentialFields, secret: str) -> Credential:
        """Create or replace the caller's credential of that name."""
        fields.checked(secret)
        now = self.clock()
        async with self.uow() as uow:
            earlier = await uow.credentials.get(caller.user, fields.name)
            credential = Credential(
                name=fields.name,
                type=fields.type,
                host=fields.host,
                username=fields.username,
                owner=caller.user,
                fingerprint=self.box.fingerprint(secret),
                create_time=earlier[0].create_time if earlier else now,
                update_time=now,
            )
            return await uow.credentials.put(credential, self.box.seal(secret))

    async def list(
        self, caller: Caller, host: str = "", kind: CredentialType | None = None
    ) -> list[Credential]:
        """The caller's credentials, optionally for one host and type."""
        async with self.uow() as uow:
            found = await uow.credentials.list(caller.user)
        return [c for c in found if (not host or c.host == host) and (kind is None or c.type is kind)]

    async def last(self, caller: Caller, host: str, kind: CredentialType) -> Credential:
        """The caller's most recently saved credential for the host and type: what forms pre-fill."""
        if not host:
            raise InvalidArgument("host", "must not be empty")
        found = await self.list(caller, host, kind)
        if not found:
            raise NotFound(f"no {kind.value} credential saved for {host}")
        return max(found, key=lambda c: c.update_time)

    async def delete(self, caller: Caller, name: str) -> None:
        """Delete one of the caller's credentials."""
        async with self.uow() as uow:
            if not await uow.credentials.forget(caller.user, name):
                raise NotFound(f"credential {name!r} not found")

    async def open(self, caller: Caller, owner: str, name: str) -> tuple[Credential, str]:
        """``owner``'s credential ``name`` and its secret, for run-svc and serving-svc alone: run-svc's
        cluster executors sign in to a login node with the key stored for the cluster (run-svc decides
        whose key a run may use), and serving-svc reaches a Kubernetes cluster's KServe with the
        kubeconfig its operator stored. Any other caller, whoever it acts for, is refused before
        anything is read."""
        # Services, never the gateway: its users never reach a secret, even an operator or the
        # credential's owner.
        if caller.via not in OPENERS:
            raise PermissionDenied("only run-svc and serving-svc open a stored credential's secret")
        if not owner:
            raise InvalidArgument("owner", "must not be empty")
        if not name:
            raise InvalidArgument("name", "must not be empty")
        opened = await self.reveal(owner, name)
        log.info("credential %r of %s opened for %s on behalf of %s", name, owner, caller.via, caller.user)
        return opened

    async def reveal(self, owner: str, name: str) -> tuple[Credential, str]:
        """The credential and its secret, for use inside the platform (imports, runs); never an API."""
        async with self.uow() as uow:
            found = await uow.credentials.get(owner, name)
        if found is None:
            raise NotFound(f"credential {name!r} of {owner!r} not found")
        return found[0], self.box.open(found[1])

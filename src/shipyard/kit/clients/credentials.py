"""The client of repo-svc's stored credentials, for run-svc and serving-svc: a cluster's login key,
opened to sign in, or its kubeconfig.

repo-svc answers it only to run-svc and serving-svc (the assertions this client signs must be theirs); the
secret it returns is kept out of reprs so that a logged object or a traceback does not show it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import grpc

from shipyard.contracts.repo.v1 import credentials_pb2, credentials_pb2_grpc
from shipyard.kit.assertions import CallerAssertions
from shipyard.kit.caller import Caller
from shipyard.kit.clients.repos import REPO_SVC, TIMEOUT_S
from shipyard.kit.grpcio import error_of

TYPES = {
    credentials_pb2.CREDENTIAL_TYPE_PASSWORD: "password",
    credentials_pb2.CREDENTIAL_TYPE_TOKEN: "token",
    credentials_pb2.CREDENTIAL_TYPE_SSH_KEY: "ssh-key",
    credentials_pb2.CREDENTIAL_TYPE_ACCESS_KEY: "access-key",
    credentials_pb2.CREDENTIAL_TYPE_GCP_KEY: "gcp-key",
}


@dataclass(frozen=True)
class OpenedSecret:
    """A stored credential with its secret: ``type`` as the CLI names it (``ssh-key``, ``password``,
    …), ``username`` not secret (an SSH user, an access key id)."""

    name: str
    type: str
    host: str
    username: str
    secret: str = field(repr=False)


class CredentialClient:
    """repo-svc's CredentialService, each call made on behalf of a caller."""

    def __init__(self, address: str, assertions: CallerAssertions) -> None:
        self._channel = grpc.aio.insecure_channel(address)
        self._assertions = assertions
        self._credentials = credentials_pb2_grpc.CredentialServiceStub(self._channel)

    async def close(self) -> None:
        """Close the channel."""
        await self._channel.close()

    async def open(self, caller: Caller, owner: str, name: str) -> OpenedSecret:
        """``owner``'s credential ``name`` with its secret, asked on behalf of ``caller``; NotFound
        naming it when ``owner`` has none of that name, PermissionDenied unless this client signs
        as run-svc or serving-svc, InvalidArgument for an empty owner or name."""
        request = credentials_pb2.OpenCredentialRequest(owner=owner, name=name)
        try:
            opened = await self._credentials.OpenCredential(
                request, metadata=self._assertions.metadata(caller, REPO_SVC), timeout=TIMEOUT_S)
        except grpc.aio.AioRpcError as exc:
            raise error_of(exc, f"credential {name} of {owner}") from None
        found = opened.credential
        return OpenedSecret(found.name, TYPES.get(found.type, "unspecified"), found.host, found.username,
                            opened.secret)

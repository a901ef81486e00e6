"""The CredentialService gRPC servicer: no public answer carries a secret (only the internal
OpenCredential, which run-svc alone may call)."""

from __future__ import annotations

import grpc

from shipyard.contracts.repo.v1 import credentials_pb2 as pb
from shipyard.contracts.repo.v1 import credentials_pb2_grpc
from shipyard.kit.errors import InvalidArgument
from shipyard.kit.grpcio import caller_of
from shipyard.kit.timestamps import timestamp
from shipyard_repo.app.credentials import Credentials
from shipyard_repo.domain.credentials import Credential, CredentialFields, CredentialType

_TYPES = {
    CredentialType.PASSWORD: pb.CREDENTIAL_TYPE_PASSWORD,
    CredentialType.TOKEN: pb.CREDENTIAL_TYPE_TOKEN,
    CredentialType.SSH_KEY: pb.CREDENTIAL_TYPE_SSH_KEY,
    CredentialType.ACCESS_KEY: pb.CREDENTIAL_TYPE_ACCESS_KEY,
    CredentialType.GCP_KEY: pb.CREDENTIAL_TYPE_GCP_KEY,
    CredentialType.KUBECONFIG: pb.CREDENTIAL_TYPE_KUBECONFIG,
}
_FROM_PROTO = {number: kind for kind, number in _TYPES.items()}


def _type(number: pb.CredentialType, required: bool = True) -> CredentialType | None:
    if number == pb.CREDENTIAL_TYPE_UNSPECIFIED and not required:
        return None
    if number not in _FROM_PROTO:
        raise InvalidArgument(
            "credential.type", f"must be one of {', '.join(kind.value for kind in CredentialType)}"
        )
    return _FROM_PROTO[number]


def credential_to_proto(credential: Credential) -> pb.Credential:
    """The contract form: everything but the secret."""
    return pb.Credential(
        name=credential.name,
        type=_TYPES[credential.type],
        host=credential.host,  # type: ignore[arg-type]
        username=credential.username,
        owner=credential.owner,
        fingerprint=credential.fingerprint,
        create_time=timestamp(credential.create_time),
        update_time=timestamp(credential.update_time),
    )


class CredentialServicer(credentials_pb2_grpc.CredentialServiceServicer):
    """Credentials over gRPC."""

    def __init__(self, credentials: Credentials) -> None:
        self._credentials = credentials

    async def SaveCredential(
        self, request: pb.SaveCredentialRequest, context: grpc.aio.ServicerContext
    ) -> pb.Credential:
        given = request.credential
        kind = _type(given.type)
        assert kind is not None
        fields = CredentialFields(name=given.name, type=kind, host=given.host, username=given.username)
        return credential_to_proto(await self._credentials.save(caller_of(context), fields, request.secret))

    async def ListCredentials(
        self, request: pb.ListCredentialsRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListCredentialsResponse:
        found = await self._credentials.list(caller_of(context), request.host, _type(request.type, False))
        return pb.ListCredentialsResponse(credentials=[credential_to_proto(c) for c in found])

    async def GetLastCredential(
        self, request: pb.GetLastCredentialRequest, context: grpc.aio.ServicerContext
    ) -> pb.Credential:
        kind = _type(request.type)
        assert kind is not None
        return credential_to_proto(await self._credentials.last(caller_of(context), request.host, kind))

    async def DeleteCredential(
        self, request: pb.DeleteCredentialRequest, context: grpc.aio.ServicerContext
    ) -> pb.DeleteCredentialResponse:
        await self._credentials.delete(caller_of(context), request.name)
        return pb.DeleteCredentialResponse()

    async def OpenCredential(
        self, request: pb.OpenCredentialRequest, context: grpc.aio.ServicerContext
    ) -> pb.OpenedCredential:
        credential, secret = await self._credentials.open(caller_of(context), request.owner, request.name)
        return pb.OpenedCredential(credential=credential_to_proto(credential), secret=secret)

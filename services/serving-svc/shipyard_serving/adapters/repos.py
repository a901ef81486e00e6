"""Reading model versions and code snapshots from repo-svc over gRPC (it owns them)."""

from __future__ import annotations

import grpc

from shipyard.contracts.repo.v1 import repos_pb2, repos_pb2_grpc
from shipyard.kit.assertions import CallerAssertions
from shipyard.kit.caller import Caller
from shipyard.kit.grpcio import error_of
from shipyard_serving.app.ports import ModelReader, PinnedCode
from shipyard_serving.domain.serving import ModelPin

REPO_SVC = "repo"  # the audience of the caller assertions it signs
TIMEOUT_S = 10.0
CODE_TIMEOUT_S = 600.0  # a clone of a large repository


class GrpcModelReader(ModelReader):
    """repo-svc's RepoService, called with the caller's identity."""

    def __init__(self, address: str, assertions: CallerAssertions) -> None:
        self._channel = grpc.aio.insecure_channel(address)
        self._assertions = assertions
        self._repos = repos_pb2_grpc.RepoServiceStub(self._channel)

    async def close(self) -> None:
        """Close the channel."""
        await self._channel.close()

    def _for(self, caller: Caller) -> tuple[tuple[str, str]]:
        """A call's metadata: ``caller``, asserted by this service to repo-svc."""
        return self._assertions.metadata(caller, REPO_SVC)

    async def pin(self, caller: Caller, model: str, version: int) -> ModelPin:
        request = repos_pb2.GetVersionRequest(kind=repos_pb2.REPO_KIND_MODEL, repo=model, number=version)
        try:
            found = await self._repos.GetVersion(request, metadata=self._for(caller), timeout=TIMEOUT_S)
        except grpc.aio.AioRpcError as exc:
            raise error_of(exc, f"model {model}@{version or 'latest'}") from None
        return ModelPin(model, found.number, found.repo_id, found.manifest_digest)

    async def metrics(self, caller: Caller, model: str, version: int) -> dict[str, float]:
        request = repos_pb2.GetVersionRequest(kind=repos_pb2.REPO_KIND_MODEL, repo=model, number=version)
        try:
            found = await self._repos.GetVersion(request, metadata=self._for(caller), timeout=TIMEOUT_S)
        except grpc.aio.AioRpcError as exc:
            raise error_of(exc, f"model {model}@{version or 'latest'}") from None
        return dict(found.metrics)

    async def snapshot_code(self, caller: Caller, repo: str, commit: str) -> PinnedCode:
        request = repos_pb2.SnapshotCodeRequest(repo=repo, commit=commit)
        try:
            snap = await self._repos.SnapshotCode(request, metadata=self._for(caller), timeout=CODE_TIMEOUT_S)
        except grpc.aio.AioRpcError as exc:
            raise error_of(exc, f"code {repo}@{commit or 'latest'}") from None
        return PinnedCode(snap.commit, snap.manifest_digest)

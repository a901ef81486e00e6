"""Reading repos and versions from repo-svc over gRPC (it owns them; run-svc only reads)."""

from __future__ import annotations

import grpc

from shipyard.contracts.repo.v1 import repos_pb2, repos_pb2_grpc
from shipyard.kit.assertions import CallerAssertions
from shipyard.kit.caller import Caller
from shipyard.kit.errors import InvalidArgument
from shipyard.kit.grpcio import error_of
from shipyard_run.app.ports import PinnedCode, PinnedVersion, RepoReader

KINDS = {"dataset": repos_pb2.REPO_KIND_DATASET, "featureset": repos_pb2.REPO_KIND_FEATURESET,
         "model": repos_pb2.REPO_KIND_MODEL}
REPO_SVC = "repo"  # the audience of the caller assertions it signs
TIMEOUT_S = 10.0
CODE_TIMEOUT_S = 600.0  # a clone of a large repository


class GrpcRepoReader(RepoReader):
    """repo-svc's RepoService, called with the run's submitter as the caller."""

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

    async def pin(self, caller: Caller, repo_kind: str, repo: str, version: int) -> PinnedVersion:
        request = repos_pb2.GetVersionRequest(kind=_kind(repo_kind), repo=repo, number=version)
        try:
            found = await self._repos.GetVersion(request, metadata=self._for(caller), timeout=TIMEOUT_S)
        except grpc.aio.AioRpcError as exc:
            raise error_of(exc, f"{repo_kind} {repo}@{version or 'latest'}") from None
        return PinnedVersion(found.number, found.manifest_digest, found.repo_id)

    async def snapshot_code(self, caller: Caller, repo: str, commit: str) -> PinnedCode:
        request = repos_pb2.SnapshotCodeRequest(repo=repo, commit=commit)
        try:
            snap = await self._repos.SnapshotCode(request, metadata=self._for(caller), timeout=CODE_TIMEOUT_S)
        except grpc.aio.AioRpcError as exc:
            raise error_of(exc, f"code {repo}@{commit or 'latest'}") from None
        return PinnedCode(snap.commit, snap.manifest_digest)

    async def check_write(self, caller: Caller, repo_kind: str, repo: str) -> str:
        request = repos_pb2.CheckVersionWriteRequest(kind=_kind(repo_kind), name=repo)
        try:
            found = await self._repos.CheckVersionWrite(request, metadata=self._for(caller),
                                                        timeout=TIMEOUT_S)
        except grpc.aio.AioRpcError as exc:
            raise error_of(exc, f"{repo_kind} {repo}") from None
        return found.id


def _kind(name: str) -> repos_pb2.RepoKind:
    if name not in KINDS:
        raise InvalidArgument("repo_kind", f"must be dataset, featureset or model, not {name!r}")
    return KINDS[name]

"""The RepoService gRPC servicer: repos and their versions."""

from __future__ import annotations

import grpc

from shipyard.contracts.repo.v1 import repos_pb2, repos_pb2_grpc
from shipyard.kit.grpcio import caller_of
from shipyard_repo.app.code import CodeSnapshots
from shipyard_repo.app.featuresets import FeatureSets
from shipyard_repo.app.garbage import GarbageCollector
from shipyard_repo.app.labels import Labels
from shipyard_repo.app.messages import (
    file_to_proto,
    kind_from_proto,
    repo_fields_from_proto,
    repo_to_proto,
    version_to_proto,
)
from shipyard_repo.app.path_imports import PathImports, PathVersion
from shipyard_repo.app.ports import RepoFilter
from shipyard_repo.app.repos import Repos
from shipyard_repo.app.uploads import UploadQuota
from shipyard_repo.app.versions import NewVersion, Versions, with_run_facts
from shipyard_repo.domain.sources import RepoKind


def _kind(number: int) -> RepoKind:
    kind = kind_from_proto(number)
    assert kind is not None
    return kind


class RepoServicer(repos_pb2_grpc.RepoServiceServicer):
    """Repos and versions over gRPC."""

    def __init__(
        self,
        repos: Repos,
        versions: Versions,
        featuresets: FeatureSets,
        path_imports: PathImports,
        code: CodeSnapshots,
        garbage: GarbageCollector,
        quota: UploadQuota,
        labels: Labels,
    ) -> None:
        self._labels = labels
        self._garbage = garbage
        self._quota = quota
        self._repos = repos
        self._versions = versions
        self._featuresets = featuresets
        self._path_imports = path_imports
        self._code = code

    async def CreateRepo(
        self, request: repos_pb2.CreateRepoRequest, context: grpc.aio.ServicerContext
    ) -> repos_pb2.Repo:
        fields = repo_fields_from_proto(request.repo)
        return repo_to_proto(await self._repos.create(caller_of(context), fields, request.request_id))

    async def GetRepo(
        self, request: repos_pb2.GetRepoRequest, context: grpc.aio.ServicerContext
    ) -> repos_pb2.Repo:
        return repo_to_proto(await self._repos.get(_kind(request.kind), request.name))

    async def ListRepos(
        self, request: repos_pb2.ListReposRequest, context: grpc.aio.ServicerContext
    ) -> repos_pb2.ListReposResponse:
        where = RepoFilter(
            kind=kind_from_proto(request.kind, required=False),
            project="" if request.no_project else (request.project or None),
            name_prefix=request.name_prefix,
            tag=request.tag,
        )
        repos, token = await self._repos.list_page(where, request.page_size, request.page_token)
        return repos_pb2.ListReposResponse(repos=[repo_to_proto(r) for r in repos], next_page_token=token)

    async def UpdateRepo(
        self, request: repos_pb2.UpdateRepoRequest, context: grpc.aio.ServicerContext
    ) -> repos_pb2.Repo:
        kind = _kind(request.kind)
        repo = await self._repos.update(
            caller_of(context),
            kind,
            request.name,
            repo_fields_from_proto(request.repo, kind),
            list(request.update_mask.paths),
            request.revision,
        )
        return repo_to_proto(repo)

    async def DeleteRepo(
        self, request: repos_pb2.DeleteRepoRequest, context: grpc.aio.ServicerContext
    ) -> repos_pb2.DeleteRepoResponse:
        await self._repos.delete(
            caller_of(context), _kind(request.kind), request.name, request.revision, request.force
        )
        return repos_pb2.DeleteRepoResponse()

    async def FindMissingBlobs(
        self, request: repos_pb2.FindMissingBlobsRequest, context: grpc.aio.ServicerContext
    ) -> repos_pb2.FindMissingBlobsResponse:
        return repos_pb2.FindMissingBlobsResponse(
            missing=await self._versions.find_missing(list(request.digests))
        )

    async def CreateVersion(
        self, request: repos_pb2.CreateVersionRequest, context: grpc.aio.ServicerContext
    ) -> repos_pb2.Version:
        caller = caller_of(context)
        new = NewVersion(
            manifest_digest=request.manifest_digest,
            parent_version=request.parent_version,
            message=request.message,
            request_id=request.request_id,
        )
        new = with_run_facts(new, caller, request.produced_by_run, request.produced_by_run_name,
                             request.metrics, request.params)
        repo, version = await self._versions.create(caller, _kind(request.kind), request.repo, new)
        return version_to_proto(repo, version)

    async def CreateVersionFromPath(
        self, request: repos_pb2.CreateVersionFromPathRequest, context: grpc.aio.ServicerContext
    ) -> repos_pb2.Version:
        wanted = PathVersion(
            path=request.path,
            device=request.device,
            inode=request.inode,
            parent_version=request.parent_version,
            message=request.message,
            request_id=request.request_id,
        )
        repo, version = await self._path_imports.create(
            caller_of(context), _kind(request.kind), request.repo, wanted
        )
        return version_to_proto(repo, version)

    async def GetVersion(
        self, request: repos_pb2.GetVersionRequest, context: grpc.aio.ServicerContext
    ) -> repos_pb2.Version:
        repo, version = await self._versions.get(_kind(request.kind), request.repo, request.number)
        return version_to_proto(repo, version)

    async def ListVersions(
        self, request: repos_pb2.ListVersionsRequest, context: grpc.aio.ServicerContext
    ) -> repos_pb2.ListVersionsResponse:
        repo, versions, token = await self._versions.list_page(
            _kind(request.kind), request.repo, request.page_size, request.page_token
        )
        return repos_pb2.ListVersionsResponse(
            versions=[version_to_proto(repo, v) for v in versions], next_page_token=token
        )

    async def ListVersionFiles(
        self, request: repos_pb2.ListVersionFilesRequest, context: grpc.aio.ServicerContext
    ) -> repos_pb2.ListVersionFilesResponse:
        files, token = await self._versions.list_files(
            _kind(request.kind),
            request.repo,
            request.number,
            request.path_prefix,
            request.page_size,
            request.page_token,
        )
        return repos_pb2.ListVersionFilesResponse(
            files=[file_to_proto(f) for f in files], next_page_token=token
        )

    async def CompareVersions(
        self, request: repos_pb2.CompareVersionsRequest, context: grpc.aio.ServicerContext
    ) -> repos_pb2.CompareVersionsResponse:
        found = await self._versions.compare(
            _kind(request.kind),
            (request.repo, request.number),
            (request.other_repo or request.repo, request.other_number),
        )
        reply = repos_pb2.CompareVersionsResponse(
            left=version_to_proto(*found.left),
            right=version_to_proto(*found.right),
            unchanged_files=found.unchanged,
        )
        for path, before, after in found.changes:
            change = reply.changes.add(path=path)
            if before is not None:
                change.before.CopyFrom(file_to_proto(before))
            if after is not None:
                change.after.CopyFrom(file_to_proto(after))
        return reply

    async def DeleteVersion(
        self, request: repos_pb2.DeleteVersionRequest, context: grpc.aio.ServicerContext
    ) -> repos_pb2.DeleteVersionResponse:
        await self._versions.delete(
            caller_of(context), _kind(request.kind), request.repo, request.number, request.force
        )
        return repos_pb2.DeleteVersionResponse()

    async def SnapshotCode(
        self, request: repos_pb2.SnapshotCodeRequest, context: grpc.aio.ServicerContext
    ) -> repos_pb2.CodeSnapshot:
        snap = await self._code.snapshot(caller_of(context), request.repo, request.commit)
        return repos_pb2.CodeSnapshot(
            repo=snap.repo.name,
            commit=snap.commit,
            manifest_digest=snap.manifest.digest,
            file_count=snap.manifest.file_count,
            size_bytes=snap.manifest.size,
        )

    async def CheckVersionWrite(
        self, request: repos_pb2.CheckVersionWriteRequest, context: grpc.aio.ServicerContext
    ) -> repos_pb2.Repo:
        repo = await self._versions.check_write(caller_of(context), _kind(request.kind), request.name)
        return repo_to_proto(repo)

    async def SetFeatureSpec(
        self, request: repos_pb2.SetFeatureSpecRequest, context: grpc.aio.ServicerContext
    ) -> repos_pb2.Version:
        repo, version = await self._featuresets.set_spec(
            caller_of(context), request.featureset, request.spec_yaml, request.parent_version
        )
        return version_to_proto(repo, version)

    async def CollectGarbage(
        self, request: repos_pb2.CollectGarbageRequest, context: grpc.aio.ServicerContext
    ) -> repos_pb2.CollectGarbageResponse:
        done = await self._garbage.collect_for(caller_of(context), request.dry_run)
        return repos_pb2.CollectGarbageResponse(
            dry_run=done.dry_run,
            deleted_blobs=done.deleted_blobs,
            deleted_bytes=done.deleted_bytes,
            referenced_blobs=done.referenced_blobs,
            referenced_bytes=done.referenced_bytes,
            recent_blobs=done.recent_blobs,
            recent_bytes=done.recent_bytes,
            grace_seconds=self._garbage.grace_s,
        )

    async def ReserveUpload(
        self, request: repos_pb2.ReserveUploadRequest, context: grpc.aio.ServicerContext
    ) -> repos_pb2.ReserveUploadResponse:
        reserved = await self._quota.reserve(caller_of(context), request.digest, request.size_bytes)
        return repos_pb2.ReserveUploadResponse(
            pending_bytes=reserved.pending_bytes, limit_bytes=reserved.limit_bytes
        )

    async def LabelRepo(
        self, request: repos_pb2.LabelRepoRequest, context: grpc.aio.ServicerContext
    ) -> repos_pb2.Repo:
        repo = await self._labels.label_repo(
            caller_of(context), _kind(request.kind), request.name, request.set, list(request.remove)
        )
        return repo_to_proto(repo)

    async def LabelVersion(
        self, request: repos_pb2.LabelVersionRequest, context: grpc.aio.ServicerContext
    ) -> repos_pb2.Version:
        repo, version = await self._labels.label_version(
            caller_of(context), _kind(request.kind), request.repo, request.number, request.set,
            list(request.remove),
        )
        return version_to_proto(repo, version)

    async def SetAlias(
        self, request: repos_pb2.SetAliasRequest, context: grpc.aio.ServicerContext
    ) -> repos_pb2.Repo:
        repo = await self._labels.set_alias(
            caller_of(context), _kind(request.kind), request.repo, request.alias, request.version
        )
        return repo_to_proto(repo)

"""Wires repo-svc: adapters from settings, injected into the use cases and the servicers."""

from __future__ import annotations

from pathlib import Path

from shipyard.contracts.repo.v1 import (
    credentials_pb2,
    credentials_pb2_grpc,
    projects_pb2,
    projects_pb2_grpc,
    repos_pb2,
    repos_pb2_grpc,
)
from shipyard.kit.blob.factory import open_blob_store
from shipyard.kit.secrets import FernetSecretBox, load_key
from shipyard.kit.service import Runtime
from shipyard_repo.adapters.fetchers import Fetchers
from shipyard_repo.adapters.store import (
    COLLECTIONS,
    BlobManifests,
    StoredBlobReferences,
    StoredUploads,
    unit_of_work_factory,
)
from shipyard_repo.adapters.tree import BlobTreeUploader, HostDirectories
from shipyard_repo.app.code import CodeSnapshots
from shipyard_repo.app.credentials import Credentials
from shipyard_repo.app.featuresets import FeatureSets
from shipyard_repo.app.garbage import GarbageCollector
from shipyard_repo.app.imports import Imports
from shipyard_repo.app.path_imports import PathImports
from shipyard_repo.app.projects import Projects
from shipyard_repo.app.repos import Repos
from shipyard_repo.app.run_events import CONSUMER as RUNS_CONSUMER
from shipyard_repo.app.run_events import SUBJECTS as RUN_SUBJECTS
from shipyard_repo.app.run_events import RunEvents
from shipyard_repo.app.uploads import UploadQuota
from shipyard_repo.app.versions import Versions
from shipyard_repo.domain.paths import parse_grantees, parse_roots
from shipyard_repo.entrypoints.credentials_api import CredentialServicer
from shipyard_repo.entrypoints.grpc_api import ProjectServicer
from shipyard_repo.entrypoints.repos_api import RepoServicer

SERVICE_NAMES = [
    projects_pb2.DESCRIPTOR.services_by_name["ProjectService"].full_name,
    repos_pb2.DESCRIPTOR.services_by_name["RepoService"].full_name,
    credentials_pb2.DESCRIPTOR.services_by_name["CredentialService"].full_name,
]


async def wire(runtime: Runtime) -> None:
    """Register repo-svc's servicers, its run-event consumer and its import loop on the runtime."""
    settings = runtime.settings
    uow = unit_of_work_factory(runtime.store, runtime.relay)
    blobs = open_blob_store(settings.default_blob_url())
    await blobs.open()
    box = FernetSecretBox(load_key(settings.secret_key, settings.data_dir / "secret.key"))
    credentials = Credentials(uow, box)
    repos = Repos(uow, allow_private=settings.allow_private_sources)
    uploads = StoredUploads(runtime.store)
    versions = Versions(uow, BlobManifests(blobs), uploads=uploads)
    hold = settings.failpoint("gc.hold")
    garbage = GarbageCollector(StoredBlobReferences(runtime.store), BlobManifests(blobs), blobs,
                               settings.gc_grace_s, uploads, hold=Path(hold) if hold else None)
    quota = UploadQuota(uploads, settings.pending_upload_max_bytes, settings.gc_grace_s)
    projects_pb2_grpc.add_ProjectServiceServicer_to_server(ProjectServicer(Projects(uow)), runtime.server)
    uploader = BlobTreeUploader(blobs, cache_dir=settings.data_dir / "repo" / "hash-caches")
    path_imports = PathImports(versions, uploader, HostDirectories(), parse_roots(settings.path_import_roots),
                               everyone=parse_grantees(settings.path_imports_for))
    fetchers = Fetchers(settings.allow_private_sources)
    code = CodeSnapshots(uow, credentials, fetchers, uploader, BlobManifests(blobs),
                         settings.data_dir / "repo" / "code")
    servicer = RepoServicer(repos, versions, FeatureSets(versions, uploader), path_imports, code,
                            garbage, quota)
    repos_pb2_grpc.add_RepoServiceServicer_to_server(servicer, runtime.server)
    credentials_pb2_grpc.add_CredentialServiceServicer_to_server(CredentialServicer(credentials),
                                                                 runtime.server)
    run_events = RunEvents(uow, versions)
    runtime.bus.consume(RUNS_CONSUMER, run_events.apply, subjects=RUN_SUBJECTS, batch_size=64)
    imports = Imports(uow, versions, credentials, fetchers, uploader, settings.data_dir / "repo" / "imports")
    runtime.tasks.append(imports.run_forever)
    if settings.gc_interval_s > 0:
        runtime.tasks.append(lambda: garbage.run_forever(settings.gc_interval_s))
    runtime.service_names.extend(SERVICE_NAMES)


__all__ = ["COLLECTIONS", "wire"]

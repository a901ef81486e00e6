"""repo-svc's composition root: projects, repos, versions, credentials and images on gRPC, its consumer of
run events, its import loop and its garbage collector.

``build_adapters`` opens what the service runs on (each closed by the runtime when the service
stops); ``compose`` (pure) builds the use cases on them and connects them as repo-svc runs them;
``wire`` does both and registers the result. The unit tests call the same ``compose`` with their
own adapters, so what they test is how production is wired.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from shipyard.contracts.repo.v1 import (
    credentials_pb2,
    credentials_pb2_grpc,
    images_pb2,
    images_pb2_grpc,
    projects_pb2,
    projects_pb2_grpc,
    repos_pb2,
    repos_pb2_grpc,
)
from shipyard.kit.blob.factory import open_blob_store
from shipyard.kit.blob.port import BlobStore
from shipyard.kit.clients.users import UserDirectoryClient
from shipyard.kit.clock import Clock, utc_now
from shipyard.kit.events import Event
from shipyard.kit.ids import new_id
from shipyard.kit.secrets import FernetSecretBox, SecretBox, load_key
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
from shipyard_repo.app.build_events import CONSUMER as BUILDS_CONSUMER
from shipyard_repo.app.build_events import SUBJECTS as BUILD_SUBJECTS
from shipyard_repo.app.build_events import BuildEvents
from shipyard_repo.app.code import CodeSnapshots
from shipyard_repo.app.credentials import Credentials
from shipyard_repo.app.featuresets import FeatureSets
from shipyard_repo.app.garbage import GarbageCollector
from shipyard_repo.app.images import Images
from shipyard_repo.app.imports import Imports
from shipyard_repo.app.labels import Labels
from shipyard_repo.app.path_imports import PathImports
from shipyard_repo.app.ports import (
    BlobReferences,
    BlobUploader,
    Directories,
    ManifestStore,
    SourceFetcher,
    Units,
    UploadLedger,
    UserDirectory,
)
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
from shipyard_repo.entrypoints.images_api import ImageServicer
from shipyard_repo.entrypoints.repos_api import RepoServicer
from shipyard_repo.settings import RepoSettings

SERVICE_NAMES = [
    projects_pb2.DESCRIPTOR.services_by_name["ProjectService"].full_name,
    repos_pb2.DESCRIPTOR.services_by_name["RepoService"].full_name,
    credentials_pb2.DESCRIPTOR.services_by_name["CredentialService"].full_name,
    images_pb2.DESCRIPTOR.services_by_name["ImageService"].full_name,
]
RUN_EVENTS_BATCH = 64


@dataclass(frozen=True)
class Adapters:
    """What repo-svc's use cases run on."""

    units: Units
    blobs: BlobStore  # what the garbage collector sweeps
    manifests: ManifestStore
    references: BlobReferences
    uploads: UploadLedger
    box: SecretBox
    uploader: BlobUploader
    directories: Directories
    fetcher: SourceFetcher
    users: UserDirectory  # the gateway's users as they are now (runs' outputs are written with their roles)
    clock: Clock = utc_now
    ids: Callable[[], str] = new_id
    # The time as epoch seconds: the garbage collector's cutoff and the upload quota's records.
    seconds: Callable[[], float] = time.time


@dataclass(frozen=True)
class Consumer:
    """A durable consumer of events, as the bus registers it."""

    name: str
    handle: Callable[[list[Event]], Awaitable[None]]
    subjects: str
    batch_size: int


@dataclass(frozen=True)
class Composed:
    """repo-svc, built: its use cases, its consumer, its background tasks and its servicers."""

    projects: Projects
    repos: Repos
    versions: Versions
    credentials: Credentials
    quota: UploadQuota
    garbage: GarbageCollector
    path_imports: PathImports
    featuresets: FeatureSets
    code: CodeSnapshots
    imports: Imports
    run_events: RunEvents
    consumer: Consumer
    tasks: list[Callable[[], Coroutine[Any, Any, None]]]
    project_servicer: ProjectServicer
    repo_servicer: RepoServicer
    credential_servicer: CredentialServicer
    images: Images
    image_servicer: ImageServicer
    build_events: BuildEvents
    build_consumer: Consumer
    labels: Labels



async def build_adapters(runtime: Runtime) -> Adapters:
    """The real adapters: units of work over the runtime's store, the blob store (opened here,
    closed when the service stops), the secret box, the fetchers of sources."""
    settings = runtime.settings_as(RepoSettings)
    blobs = open_blob_store(settings.default_blob_url())
    await blobs.open()
    runtime.close_on_stop(blobs.close)
    users = UserDirectoryClient(settings.gateway_addr, runtime.assertions)
    runtime.close_on_stop(users.close)
    return Adapters(
        units=unit_of_work_factory(runtime.store, runtime.relay),
        blobs=blobs,
        manifests=BlobManifests(blobs),
        references=StoredBlobReferences(runtime.store),
        uploads=StoredUploads(runtime.store),
        box=FernetSecretBox(load_key(settings.secret_key, settings.data_dir / "secret.key")),
        uploader=BlobTreeUploader(blobs, cache_dir=settings.service_dir() / "hash-caches"),
        directories=HostDirectories(),
        fetcher=Fetchers(settings.allow_private_sources),
        users=users,
    )


def compose(adapters: Adapters, settings: RepoSettings) -> Composed:
    """Build the use cases on ``adapters`` and connect them as repo-svc runs them."""
    a = adapters
    credentials = Credentials(a.units, a.box, a.clock)
    projects = Projects(a.units, a.clock, a.ids)
    repos = Repos(a.units, a.clock, a.ids, allow_private=settings.allow_private_sources)
    versions = Versions(a.units, a.manifests, a.clock, uploads=a.uploads)
    hold = settings.failpoint("gc.hold")
    garbage = GarbageCollector(a.references, a.manifests, a.blobs, settings.gc_grace_s, a.uploads,
                               clock=a.seconds, hold=Path(hold) if hold else None)
    quota = UploadQuota(a.uploads, settings.pending_upload_max_bytes, settings.gc_grace_s, a.seconds)
    path_imports = PathImports(versions, a.uploader, a.directories, parse_roots(settings.path_import_roots),
                               everyone=parse_grantees(settings.path_imports_for))
    featuresets = FeatureSets(versions, a.uploader)
    work = settings.service_dir()
    code = CodeSnapshots(a.units, credentials, a.fetcher, a.uploader, a.manifests, work / "code")
    imports = Imports(a.units, versions, credentials, a.fetcher, a.uploader, work / "imports")
    labels = Labels(a.units, a.clock)
    run_events = RunEvents(a.units, versions, a.manifests, a.users)
    consumer = Consumer(RUNS_CONSUMER, run_events.apply, RUN_SUBJECTS, RUN_EVENTS_BATCH)
    images = Images(a.units, a.clock)
    build_events = BuildEvents(images)
    tasks: list[Callable[[], Coroutine[Any, Any, None]]] = [imports.run_forever]
    if settings.gc_interval_s > 0:
        tasks.append(lambda: garbage.run_forever(settings.gc_interval_s))
    return Composed(
        projects, repos, versions, credentials, quota, garbage, path_imports, featuresets, code, imports,
        run_events, consumer, tasks,
        project_servicer=ProjectServicer(projects),
        repo_servicer=RepoServicer(repos, versions, featuresets, path_imports, code, garbage, quota, labels),
        credential_servicer=CredentialServicer(credentials),
        images=images,
        image_servicer=ImageServicer(images),
        build_events=build_events,
        build_consumer=Consumer(BUILDS_CONSUMER, build_events.apply, BUILD_SUBJECTS, RUN_EVENTS_BATCH),
        labels=labels,
    )


async def wire(runtime: Runtime) -> None:
    """Build repo-svc on the runtime; register its servicers, its run-event consumer, its import
    loop and its garbage collector."""
    repo = compose(await build_adapters(runtime), runtime.settings_as(RepoSettings))
    projects_pb2_grpc.add_ProjectServiceServicer_to_server(repo.project_servicer, runtime.server)
    repos_pb2_grpc.add_RepoServiceServicer_to_server(repo.repo_servicer, runtime.server)
    credentials_pb2_grpc.add_CredentialServiceServicer_to_server(repo.credential_servicer, runtime.server)
    images_pb2_grpc.add_ImageServiceServicer_to_server(repo.image_servicer, runtime.server)
    runs, builds = repo.consumer, repo.build_consumer
    runtime.bus.consume(runs.name, runs.handle, subjects=runs.subjects, batch_size=runs.batch_size)
    runtime.bus.consume(builds.name, builds.handle, subjects=builds.subjects, batch_size=builds.batch_size)
    runtime.tasks.extend(repo.tasks)
    runtime.service_names.extend(SERVICE_NAMES)


__all__ = ["COLLECTIONS", "Adapters", "Composed", "build_adapters", "compose", "wire"]

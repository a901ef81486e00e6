"""run-svc's composition root: ``build_adapters`` opens what production runs on (the store's units of
work, repo-svc's client, the blob store, the local executor), ``compose`` builds the use cases, the
scheduler and the servicer on any adapters (the unit tests hand in fakes), and ``wire`` does both and
registers the result with the runtime."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from shipyard.contracts.run.v1 import (
    builds_pb2,
    builds_pb2_grpc,
    clusters_pb2,
    clusters_pb2_grpc,
    runs_pb2,
    runs_pb2_grpc,
    studies_pb2,
    studies_pb2_grpc,
    tracking_pb2,
    tracking_pb2_grpc,
)
from shipyard.kit.blob.factory import open_blob_store
from shipyard.kit.bubblewrap import isolation
from shipyard.kit.clients.credentials import CredentialClient
from shipyard.kit.clients.repos import RepoClient
from shipyard.kit.clients.serving import ServingClient
from shipyard.kit.clock import Clock, utc_now
from shipyard.kit.service import Runtime
from shipyard_run.adapters.clusters import RemoteClusters
from shipyard_run.adapters.code_files import StoredCodeFiles
from shipyard_run.adapters.environments import LocalEnvironments, PackageSources
from shipyard_run.adapters.local import LocalExecutor
from shipyard_run.adapters.manifests import BlobManifests
from shipyard_run.adapters.store import COLLECTIONS, unit_of_work_factory
from shipyard_run.adapters.study_search import StudySearch
from shipyard_run.adapters.tf_events import TensorFlowEvents
from shipyard_run.app.clusters import Clusters, pin_host_key
from shipyard_run.app.executors import Executors
from shipyard_run.app.image_builds import Builder, ImageBuilds
from shipyard_run.app.output_refusals import CONSUMER as REFUSALS_CONSUMER
from shipyard_run.app.output_refusals import SUBJECTS as REFUSAL_SUBJECTS
from shipyard_run.app.output_refusals import OutputRefusals
from shipyard_run.app.ports import (
    ClusterExecutors,
    CodeFiles,
    EventFiles,
    Executor,
    ManifestWriter,
    RepoReader,
    ServedEndpoints,
    TrialSearch,
    Units,
)
from shipyard_run.app.run_tokens import RunTokens
from shipyard_run.app.runs import Runs
from shipyard_run.app.scheduler import Scheduler
from shipyard_run.app.studies import Studies
from shipyard_run.app.templates import Templates
from shipyard_run.app.tracking import Tracking
from shipyard_run.entrypoints.builds_api import ImageBuildServicer
from shipyard_run.entrypoints.clusters_api import ClusterServicer
from shipyard_run.entrypoints.grpc_api import RunServicer
from shipyard_run.entrypoints.studies_api import StudyServicer
from shipyard_run.entrypoints.tracking_api import TrackingServicer
from shipyard_run.settings import RunSettings

SERVICE_NAMES = [runs_pb2.DESCRIPTOR.services_by_name["RunService"].full_name,
                 builds_pb2.DESCRIPTOR.services_by_name["ImageBuildService"].full_name,
                 tracking_pb2.DESCRIPTOR.services_by_name["TrackingService"].full_name,
                 clusters_pb2.DESCRIPTOR.services_by_name["ClusterService"].full_name,
                 studies_pb2.DESCRIPTOR.services_by_name["StudyService"].full_name]
# SHIPYARD_FAILPOINTS=run.sandbox=unavailable: act as on a machine without bubblewrap (tests).
SANDBOX_FAILPOINT = "run.sandbox"
log = logging.getLogger(__name__)


@dataclass
class Adapters:
    """What run-svc's use cases run on."""

    uow: Units
    repos: RepoReader
    executor: Executor
    files: CodeFiles  # the code snapshots' build and requirement files
    clock: Clock = utc_now
    manifests: ManifestWriter | None = None  # where registered model versions' manifests go
    clusters: ClusterExecutors | None = None  # opens clusters' executors (None: local runs only)
    served: ServedEndpoints | None = None  # what serving-svc serves on clusters (None: not asked)
    search: TrialSearch | None = None  # hyperparameter studies' search algorithms (None: no studies)
    events: EventFiles | None = None  # reads TensorFlow event files (a study's TensorFlowEvent collector)


@dataclass
class RunService:
    """run-svc composed: its use cases, the scheduler that moves runs along, the builder that builds
    images' environments, and the servicers."""

    runs: Runs
    templates: Templates
    tokens: RunTokens
    scheduler: Scheduler
    servicer: RunServicer
    builds: ImageBuilds
    builder: Builder
    builds_servicer: ImageBuildServicer
    tracking: Tracking
    tracking_servicer: TrackingServicer
    clusters: Clusters
    clusters_servicer: ClusterServicer
    studies: Studies
    studies_servicer: StudyServicer
    refusals: OutputRefusals  # repo-svc's refusals of runs' outputs, noted on the runs


def compose(adapters: Adapters, settings: RunSettings) -> RunService:
    """The use cases, scheduler and servicer on ``adapters``, connected as they run: the executor
    tells the scheduler when a job exits, the use cases wake it when there is work."""
    executor = adapters.executor
    executors = Executors(executor, adapters.uow, adapters.clusters)
    scheduler = Scheduler(adapters.uow, executors, slots=settings.run_slots(), clock=adapters.clock,
                          single_user=settings.single_user, api_server=settings.public_grpc_addr,
                          api_url=settings.public_http_url, manifests=adapters.manifests)
    executors.on_exit = scheduler.wake
    builder = Builder(adapters.uow, executor, clock=adapters.clock)
    builds = ImageBuilds(adapters.uow, adapters.repos, adapters.files, executor, wake=builder.wake,
                         clock=adapters.clock)
    studies = Studies(adapters.uow, executors, adapters.search, wake_scheduler=scheduler.wake,
                      clock=adapters.clock, events=adapters.events)
    scheduler.on_end, scheduler.on_trial_exit = studies.wake, studies.collect_files
    scheduler.on_trial_running = studies.collect_running_files
    runs = Runs(adapters.uow, adapters.repos, executors, adapters.files, builds, wake=scheduler.wake,
                clock=adapters.clock, single_user=settings.single_user, search=adapters.search,
                stop_study=studies.stop, wake_studies=studies.wake, events=adapters.events)
    templates = Templates(adapters.uow, runs, clock=adapters.clock)
    tokens = RunTokens(adapters.uow)
    tracking = Tracking(adapters.uow, adapters.repos, adapters.manifests, clock=adapters.clock)
    clusters = Clusters(adapters.uow, clock=adapters.clock, served=adapters.served)
    return RunService(runs, templates, tokens, scheduler, RunServicer(runs, templates, tokens), builds,
                      builder, ImageBuildServicer(builds), tracking, TrackingServicer(tracking), clusters,
                      ClusterServicer(clusters), studies, StudyServicer(studies),
                      OutputRefusals(adapters.uow))


async def build_adapters(runtime: Runtime, settings: RunSettings) -> Adapters:
    """The production adapters; what they open is closed by the runtime when the service stops."""
    blobs = open_blob_store(settings.default_blob_url())
    await blobs.open()
    runtime.close_on_stop(blobs.close)
    repos = RepoClient(settings.repo_addr, runtime.assertions)
    runtime.close_on_stop(repos.close)
    workspaces = settings.service_dir() / "workspaces"
    packages = PackageSources(settings.package_index_url, settings.package_find_links,
                              settings.packages_offline)
    environments = LocalEnvironments(settings.environments_root(), packages)
    environments.root.mkdir(parents=True, exist_ok=True)
    runtime.disk_paths.append(environments.root)  # health: room for environments
    executor = LocalExecutor(workspaces, blobs, isolation=isolation(settings, SANDBOX_FAILPOINT),
                             environments=environments)
    if missing := executor.isolation_missing():
        whose = "anyone's (single-user mode)" if settings.single_user else "only operators'"
        log.warning("runs cannot be isolated here: %s; %s runs start, sharing the machine", missing, whose)
    runtime.disk_paths.append(executor.root)  # health: room for runs' workspaces
    uow = unit_of_work_factory(runtime.store, runtime.relay)
    credentials = CredentialClient(settings.repo_addr, runtime.assertions)
    runtime.close_on_stop(credentials.close)
    clusters = RemoteClusters(settings.service_dir() / "clusters", blobs, credentials, pin_host_key(uow),
                           packages)
    serving = ServingClient(settings.serving_addr, runtime.assertions)
    runtime.close_on_stop(serving.close)
    return Adapters(uow, repos, executor, StoredCodeFiles(blobs), manifests=BlobManifests(blobs),
                    clusters=clusters, served=serving, search=StudySearch(), events=TensorFlowEvents())


async def wire(runtime: Runtime) -> None:
    """Build the adapters, compose run-svc on them, register RunService and start the scheduler."""
    settings = runtime.settings_as(RunSettings)
    service = compose(await build_adapters(runtime, settings), settings)
    runs_pb2_grpc.add_RunServiceServicer_to_server(service.servicer, runtime.server)
    builds_pb2_grpc.add_ImageBuildServiceServicer_to_server(service.builds_servicer, runtime.server)
    tracking_pb2_grpc.add_TrackingServiceServicer_to_server(service.tracking_servicer, runtime.server)
    clusters_pb2_grpc.add_ClusterServiceServicer_to_server(service.clusters_servicer, runtime.server)
    studies_pb2_grpc.add_StudyServiceServicer_to_server(service.studies_servicer, runtime.server)
    runtime.tasks.append(service.scheduler.run_forever)
    runtime.close_on_stop(service.scheduler.executors.close)
    runtime.tasks.append(service.builder.run_forever)
    runtime.tasks.append(service.studies.run_forever)
    runtime.bus.consume(REFUSALS_CONSUMER, service.refusals.apply, subjects=REFUSAL_SUBJECTS, batch_size=64)
    runtime.service_names.extend(SERVICE_NAMES)


__all__ = ["COLLECTIONS", "Adapters", "RunService", "build_adapters", "compose", "wire"]

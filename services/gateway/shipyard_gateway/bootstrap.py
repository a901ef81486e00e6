"""The gateway's composition root: the identity and webhook store, the channels to the services, the
gRPC and HTTP edges.

``build_adapters`` opens what the gateway runs on (each closed by the runtime when it stops);
``compose`` (pure) builds the use cases, connects them as the gateway runs them and builds its
edges; ``wire`` does both and registers them. The unit tests call the same ``compose`` with their own
adapters, so what they test is how production is wired.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from google.protobuf.descriptor import ServiceDescriptor

from shipyard.contracts.gateway.v1 import gateway_pb2, users_pb2_grpc
from shipyard.contracts.inference import grpc_predict_v2_pb2_grpc
from shipyard.contracts.lineage.v1 import lineage_pb2
from shipyard.contracts.repo.v1 import credentials_pb2, images_pb2, projects_pb2, repos_pb2
from shipyard.contracts.run.v1 import builds_pb2, clusters_pb2, runs_pb2, studies_pb2, tracking_pb2
from shipyard.contracts.serving.v1 import serving_pb2
from shipyard.kit.assertions import CallerAssertions
from shipyard.kit.blob.factory import open_blob_store
from shipyard.kit.blob.port import BlobStore
from shipyard.kit.bus import EventBus
from shipyard.kit.clock import Clock, utc_now
from shipyard.kit.grpcio import REFLECTION_METHODS
from shipyard.kit.ids import new_id
from shipyard.kit.secrets import FernetSecretBox, SecretBox, load_key
from shipyard.kit.service import Runtime
from shipyard_gateway.adapters.backends import Backends
from shipyard_gateway.adapters.run_tokens import GrpcRunTokens
from shipyard_gateway.adapters.store import COLLECTIONS, unit_of_work_factory
from shipyard_gateway.adapters.webhook_feed import JetStreamEvents
from shipyard_gateway.adapters.webhook_runner import WebhookRunner
from shipyard_gateway.adapters.webhook_sender import HttpSender
from shipyard_gateway.app.identity import Identity, RunTokenVerifier
from shipyard_gateway.app.ports import Sender, Units, WebhookFeed
from shipyard_gateway.app.webhooks import Webhooks
from shipyard_gateway.domain.identity import TokenLimits
from shipyard_gateway.domain.webhooks import RetryPolicy
from shipyard_gateway.entrypoints.api import PublicApi, remote_routes
from shipyard_gateway.entrypoints.blobs_http import BlobEdge
from shipyard_gateway.entrypoints.grpc_edge import PublicHandler, refusals
from shipyard_gateway.entrypoints.http import HttpEdge
from shipyard_gateway.entrypoints.http_server import HttpServer
from shipyard_gateway.entrypoints.inference_grpc import SERVICE as INFERENCE_SERVICE
from shipyard_gateway.entrypoints.inference_grpc import InferenceEdge
from shipyard_gateway.entrypoints.limits import EdgeLimits
from shipyard_gateway.entrypoints.local_api import local_routes
from shipyard_gateway.entrypoints.serving_http import ServingEdge
from shipyard_gateway.entrypoints.users_api import UserDirectoryServicer, edge_authenticator
from shipyard_gateway.entrypoints.webhooks_api import webhook_routes
from shipyard_gateway.settings import GatewaySettings

log = logging.getLogger(__name__)

BACKENDS = ("repo-svc", "run-svc", "serving-svc", "lineage-svc")
# Each service's public API, and the backend that answers it.
FORWARDED: list[tuple[ServiceDescriptor, str]] = [
    (projects_pb2.DESCRIPTOR.services_by_name["ProjectService"], "repo-svc"),
    (repos_pb2.DESCRIPTOR.services_by_name["RepoService"], "repo-svc"),
    (credentials_pb2.DESCRIPTOR.services_by_name["CredentialService"], "repo-svc"),
    (images_pb2.DESCRIPTOR.services_by_name["ImageService"], "repo-svc"),
    (lineage_pb2.DESCRIPTOR.services_by_name["LineageService"], "lineage-svc"),
    (runs_pb2.DESCRIPTOR.services_by_name["RunService"], "run-svc"),
    (builds_pb2.DESCRIPTOR.services_by_name["ImageBuildService"], "run-svc"),
    (tracking_pb2.DESCRIPTOR.services_by_name["TrackingService"], "run-svc"),
    (clusters_pb2.DESCRIPTOR.services_by_name["ClusterService"], "run-svc"),
    (studies_pb2.DESCRIPTOR.services_by_name["StudyService"], "run-svc"),
    (serving_pb2.DESCRIPTOR.services_by_name["ServingService"], "serving-svc"),
]
PUBLIC_SERVICES = [*(service for service, _ in FORWARDED), *gateway_pb2.DESCRIPTOR.services_by_name.values()]


@dataclass
class Adapters:
    """What the gateway's use cases and edges run on."""

    uow: Units
    backends: Backends  # the channels to the services, and their health
    bus: EventBus  # watches and the status page read it
    feed: WebhookFeed  # each webhook's consumer of the event stream
    blobs: BlobStore
    box: SecretBox  # seals webhooks' secrets
    sender: Sender  # POSTs webhooks' requests
    run_tokens: RunTokenVerifier  # asks run-svc about runs' tokens
    assertions: CallerAssertions  # signs the calls forwarded to the services
    clock: Clock = utc_now
    ids: Callable[[], str] = new_id  # the ids of new tokens and webhooks
    ticks: Callable[[], float] = time.monotonic  # the token cache's and the throttles' clock


@dataclass
class Gateway:
    """The gateway, built: its use cases, the webhooks' deliveries, and its gRPC and HTTP edges."""

    identity: Identity
    webhooks: Webhooks
    deliveries: WebhookRunner
    api: PublicApi
    grpc: PublicHandler
    http: HttpEdge
    inference: InferenceEdge  # the V2 inference protocol over gRPC
    serving: ServingEdge  # its proxy to the model servers


def compose(adapters: Adapters, settings: GatewaySettings) -> Gateway:
    """Build the gateway on ``adapters`` and connect it as it runs: webhooks start and stop their
    deliveries, which read their owners' roles from identity; the public API answers identity and
    webhooks itself and forwards the rest to the services."""
    identity = Identity(adapters.uow, clock=adapters.clock, ids=adapters.ids, limits=token_limits(settings),
                        cache_ttl_s=settings.token_cache_ttl_s, ticks=adapters.ticks,
                        sign_in_failures=settings.sign_in_failures_per_minute,
                        bad_tokens=settings.bad_tokens_per_minute, run_tokens=adapters.run_tokens)
    retry = RetryPolicy(settings.webhook_attempts, settings.webhook_backoff_s, settings.webhook_backoff_max_s)
    deliveries = WebhookRunner(adapters.feed, adapters.uow, adapters.box, adapters.sender, identity.roles_of,
                               retry)
    webhooks = Webhooks(adapters.uow, adapters.box, adapters.feed, deliveries,
                        allow_private=settings.webhook_allow_private, clock=adapters.clock, ids=adapters.ids)
    backends, bus = adapters.backends, adapters.bus
    blob_url = settings.blob_url_for_clients()
    routes = [*(route for service, backend in FORWARDED
                for route in remote_routes(backend, backends.channel(backend), service)),
              *local_routes(identity, backends, bus, blob_url), *webhook_routes(webhooks)]
    api = PublicApi(identity, routes, adapters.assertions)
    http = HttpEdge(api, backends, bus, BlobEdge(api, adapters.blobs), blob_url, EdgeLimits.of(settings))
    serving = ServingEdge(api, backends.channel("serving-svc"))
    inference = InferenceEdge(serving, lambda: backends.all_healthy)
    return Gateway(identity, webhooks, deliveries, api, PublicHandler(api, bus), http, inference, serving)


def token_limits(settings: GatewaySettings) -> TokenLimits:
    """Token lifetimes and counts from the SHIPYARD_TOKEN_* and SHIPYARD_SESSION_* settings."""
    return TokenLimits(default_ttl=timedelta(days=settings.token_default_ttl_days),
                       max_ttl=timedelta(days=settings.token_max_ttl_days),
                       max_per_user=settings.token_max_per_user,
                       session_ttl=timedelta(hours=settings.session_ttl_hours))


async def build_adapters(runtime: Runtime) -> Adapters:
    """The production adapters; the channels, the blob store and the webhooks' HTTP client are closed
    by the runtime when the gateway stops."""
    settings = runtime.settings_as(GatewaySettings)
    addresses = (settings.repo_addr, settings.run_addr, settings.serving_addr, settings.lineage_addr)
    backends = Backends.connect(dict(zip(BACKENDS, addresses, strict=True)), runtime.assertions,
                                lambda: runtime.health)
    runtime.close_on_stop(backends.close)
    blobs = open_blob_store(settings.default_blob_url())
    await blobs.open()
    runtime.close_on_stop(blobs.close)
    sender = HttpSender(settings.webhook_allow_private)
    runtime.close_on_stop(sender.close)
    # Without SHIPYARD_SECRET_KEY, a key file of its own beside its store (repo-svc keeps its own).
    box = FernetSecretBox(load_key(settings.secret_key, settings.service_dir() / "secret.key"))
    run_tokens = GrpcRunTokens(backends.channel("run-svc"), runtime.assertions)
    return Adapters(unit_of_work_factory(runtime.store, runtime.relay), backends, runtime.bus,
                    JetStreamEvents(runtime.bus, settings.stream_replicas), blobs, box, sender, run_tokens,
                    runtime.assertions)



async def wire(runtime: Runtime) -> None:
    """Build the gateway on the runtime; register the public API on the gRPC server, and the tasks
    that watch the services, send the webhooks and serve the HTTP edge."""
    settings = runtime.settings_as(GatewaySettings)
    adapters = await build_adapters(runtime)
    gateway = compose(adapters, settings)
    await first_admin(gateway.identity, settings.admin_token_file)
    # The public edge takes users' bearer tokens, not caller assertions: checked (with the role
    # policy) from each call's metadata before its request is read. Reflection tells only the
    # public API's schema (the published protos), so grpcurl and the like may ask without a token.
    api = gateway.api
    # The internal UserDirectory (repo-svc's question) is authenticated by caller assertions instead.
    runtime.authentication.use(edge_authenticator(api.authenticate, runtime.assertions),
                               open_methods=REFLECTION_METHODS, refused=refusals(api))
    runtime.server.add_generic_rpc_handlers([gateway.grpc])
    users_pb2_grpc.add_UserDirectoryServicer_to_server(UserDirectoryServicer(gateway.identity.roles_of),
                                                       runtime.server)
    runtime.service_names.extend(s.full_name for s in PUBLIC_SERVICES)
    grpc_predict_v2_pb2_grpc.add_GRPCInferenceServiceServicer_to_server(gateway.inference, runtime.server)
    runtime.service_names.append(INFERENCE_SERVICE)
    runtime.close_on_stop(gateway.serving.close)
    backends = adapters.backends
    runtime.ready_checks.append(lambda: backends.all_healthy)
    http = HttpServer(gateway.http.app(), settings.http_listen)
    runtime.close_on_stop(http.close)
    runtime.tasks.extend([backends.watch, gateway.deliveries.run_forever, http.serve])


async def first_admin(identity: Identity, token_file: Path | None) -> None:
    """On the first start, create the admin operator and write its token to ``token_file``."""
    admin_token = await identity.ensure_admin()
    if admin_token is not None and token_file is not None:
        write_secret(token_file, admin_token)
        log.info("created the first admin; token written to %s", token_file)


def write_secret(path: Path, secret: str) -> None:
    """Write a secret readable by its owner only."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(secret + "\n")


__all__ = ["COLLECTIONS", "Adapters", "Gateway", "build_adapters", "compose", "wire"]

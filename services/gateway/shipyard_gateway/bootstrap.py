"""Wires the gateway: identity store, channels to the services, the gRPC and HTTP edges."""

from __future__ import annotations

import asyncio
import logging
import os
from datetime import timedelta
from pathlib import Path

from aiohttp import web

from shipyard.contracts.gateway.v1 import gateway_pb2
from shipyard.contracts.lineage.v1 import lineage_pb2
from shipyard.contracts.repo.v1 import credentials_pb2, projects_pb2, repos_pb2
from shipyard.contracts.run.v1 import runs_pb2
from shipyard.contracts.serving.v1 import serving_pb2
from shipyard.kit.blob.factory import open_blob_store
from shipyard.kit.secrets import FernetSecretBox, load_key
from shipyard.kit.service import Runtime
from shipyard.kit.settings import Settings
from shipyard_gateway.adapters.backends import Backends
from shipyard_gateway.adapters.run_tokens import GrpcRunTokens
from shipyard_gateway.adapters.store import DIRECTORY_COLLECTIONS, StoredDirectoryFactory
from shipyard_gateway.adapters.webhook_feed import JetStreamEvents
from shipyard_gateway.adapters.webhook_runner import WebhookRunner
from shipyard_gateway.adapters.webhook_sender import HttpSender
from shipyard_gateway.adapters.webhook_store import WEBHOOK_COLLECTIONS, StoredWebhooksFactory
from shipyard_gateway.app.identity import Identity
from shipyard_gateway.app.webhooks import Webhooks
from shipyard_gateway.domain.identity import TokenLimits
from shipyard_gateway.domain.webhooks import RetryPolicy
from shipyard_gateway.entrypoints.api import PublicApi, Route, remote_routes
from shipyard_gateway.entrypoints.blobs_http import BlobEdge
from shipyard_gateway.entrypoints.grpc_edge import PublicHandler, refusals
from shipyard_gateway.entrypoints.http import HttpEdge
from shipyard_gateway.entrypoints.limits import EdgeLimits
from shipyard_gateway.entrypoints.local_api import local_routes
from shipyard_gateway.entrypoints.webhooks_api import webhook_routes

log = logging.getLogger(__name__)

REFLECTION = "/grpc.reflection.v1alpha.ServerReflection/"

COLLECTIONS = (*DIRECTORY_COLLECTIONS, *WEBHOOK_COLLECTIONS)

PUBLIC_SERVICES = [
    projects_pb2.DESCRIPTOR.services_by_name["ProjectService"],
    repos_pb2.DESCRIPTOR.services_by_name["RepoService"],
    credentials_pb2.DESCRIPTOR.services_by_name["CredentialService"],
    lineage_pb2.DESCRIPTOR.services_by_name["LineageService"],
    runs_pb2.DESCRIPTOR.services_by_name["RunService"],
    serving_pb2.DESCRIPTOR.services_by_name["ServingService"],
    *gateway_pb2.DESCRIPTOR.services_by_name.values(),
]


def write_secret(path: Path, secret: str) -> None:
    """Write a secret readable by its owner only."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(secret + "\n")


async def wire(runtime: Runtime) -> None:
    """Register the public API on the gRPC server and start the HTTP edge with the service."""
    settings = runtime.settings
    backends = Backends.connect({"repo-svc": settings.repo_addr, "run-svc": settings.run_addr,
                                 "serving-svc": settings.serving_addr, "lineage-svc": settings.lineage_addr},
                                runtime.assertions, lambda: runtime.health)
    identity = Identity(StoredDirectoryFactory(runtime.store), limits=token_limits(settings),
                        cache_ttl_s=settings.token_cache_ttl_s,
                        sign_in_failures=settings.sign_in_failures_per_minute,
                        bad_tokens=settings.bad_tokens_per_minute,
                        run_tokens=GrpcRunTokens(backends.channel("run-svc"), runtime.assertions))
    admin_token = await identity.ensure_admin()
    if admin_token is not None and settings.admin_token_file is not None:
        write_secret(settings.admin_token_file, admin_token)
        log.info("created the first admin; token written to %s", settings.admin_token_file)
    blob_url = (settings.public_http_url or f"http://{settings.http_listen}").rstrip("/") + "/api/blobs"
    routes = [*remote_routes("repo-svc", backends.channel("repo-svc"), PUBLIC_SERVICES[0]),
              *remote_routes("repo-svc", backends.channel("repo-svc"), PUBLIC_SERVICES[1]),
              *remote_routes("repo-svc", backends.channel("repo-svc"), PUBLIC_SERVICES[2]),
              *remote_routes("lineage-svc", backends.channel("lineage-svc"), PUBLIC_SERVICES[3]),
              *remote_routes("run-svc", backends.channel("run-svc"), PUBLIC_SERVICES[4]),
              *remote_routes("serving-svc", backends.channel("serving-svc"), PUBLIC_SERVICES[5]),
              *local_routes(identity, backends, runtime.bus, blob_url),
              *_wire_webhooks(runtime, identity)]
    blobs = open_blob_store(settings.default_blob_url())
    await blobs.open()
    api = PublicApi(identity, routes, runtime.assertions)
    # The public edge takes users' bearer tokens, not caller assertions: checked (with the role
    # policy) from each call's metadata before its request is read. Reflection tells only the
    # public API's schema (the published protos), so grpcurl and the like may ask without a token.
    runtime.authentication.use(api.authenticate, open_methods=(REFLECTION,), refused=refusals(api))
    runtime.server.add_generic_rpc_handlers([PublicHandler(api, runtime.bus)])
    runtime.service_names.extend(s.full_name for s in PUBLIC_SERVICES)
    runtime.ready_checks.append(lambda: backends.all_healthy)
    runtime.tasks.append(backends.watch)

    async def serve_http() -> None:
        edge = HttpEdge(api, backends, runtime.bus, BlobEdge(api, blobs), blob_url, EdgeLimits.of(settings))
        runner = web.AppRunner(edge.app(), access_log=None)
        await runner.setup()
        host, _, port = settings.http_listen.rpartition(":")
        await web.TCPSite(runner, host or "127.0.0.1", int(port)).start()
        log.info("console and JSON API on http://%s", settings.http_listen)
        try:
            await _forever()
        finally:
            await runner.cleanup()
            await backends.close()
            await blobs.close()

    runtime.tasks.append(serve_http)


def token_limits(settings: Settings) -> TokenLimits:
    """Token lifetimes and counts from the SHIPYARD_TOKEN_* and SHIPYARD_SESSION_* settings."""
    return TokenLimits(default_ttl=timedelta(days=settings.token_default_ttl_days),
                       max_ttl=timedelta(days=settings.token_max_ttl_days),
                       max_per_user=settings.token_max_per_user,
                       session_ttl=timedelta(hours=settings.session_ttl_hours))


def _wire_webhooks(runtime: Runtime, identity: Identity) -> list[Route]:
    """The webhook use cases' routes, and the task that sends every webhook's events."""
    settings = runtime.settings
    # Without SHIPYARD_SECRET_KEY, a key file of its own beside its store (repo-svc keeps its own).
    box = FernetSecretBox(load_key(settings.secret_key, settings.data_dir / settings.service / "secret.key"))
    store = StoredWebhooksFactory(runtime.store)
    events = JetStreamEvents(runtime.bus)
    sender = HttpSender(settings.webhook_allow_private)
    retry = RetryPolicy(settings.webhook_attempts, settings.webhook_backoff_s, settings.webhook_backoff_max_s)
    runner = WebhookRunner(events, store, box, sender, identity.roles_of, retry)

    async def deliver() -> None:
        try:
            await runner.run_forever()
        finally:
            await sender.close()

    runtime.tasks.append(deliver)
    return webhook_routes(Webhooks(store, box, events, runner, allow_private=settings.webhook_allow_private))


async def _forever() -> None:
    await asyncio.Event().wait()


__all__ = ["COLLECTIONS", "wire"]

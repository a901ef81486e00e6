"""Connection to the gateway: where it is, which token to send, and the service stubs."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import grpc
from google.protobuf.message import Message

from shipyard.kit.rpc_errors import failure_of
from shipyard.local.datadir import DataDir

if TYPE_CHECKING:
    from shipyard.contracts.gateway.v1 import gateway_pb2, gateway_pb2_grpc
    from shipyard.contracts.lineage.v1 import lineage_pb2_grpc
    from shipyard.contracts.repo.v1 import (
        credentials_pb2_grpc,
        images_pb2_grpc,
        projects_pb2_grpc,
        repos_pb2_grpc,
    )
    from shipyard.contracts.run.v1 import (
        builds_pb2_grpc,
        clusters_pb2_grpc,
        runs_pb2_grpc,
        studies_pb2_grpc,
        tracking_pb2_grpc,
    )
    from shipyard.contracts.serving.v1 import serving_pb2_grpc

R = TypeVar("R", bound=Message)
DEFAULT_SERVER = "127.0.0.1:50051"


class ClientError(Exception):
    """A call failed; ``code`` is the gRPC status code name. A bad request names its ``field`` and
    the ``problem`` with it; ``reason`` names the error (``NOT_FOUND``, ``NO_SPACE``…) when the
    server said (both from the status details, "" otherwise)."""

    def __init__(self, code: str, message: str, field: str = "", problem: str = "", reason: str = "") -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.field = field
        self.problem = problem
        self.reason = reason


class TransferError(Exception):
    """A blob could not be moved; the message says which and why, ``code`` the gateway's error code
    (RESOURCE_EXHAUSTED: its disk is full) or UNAVAILABLE when it gave none. (Raised by
    ``shipyard.client.transfer``; kept here so that catching it does not import the HTTP client.)"""

    def __init__(self, message: str, code: str = "UNAVAILABLE") -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def config_file() -> Path:
    """Where ``shipyard login`` keeps the server and token."""
    base = Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config")
    return base / "shipyard" / "credentials.json"


@dataclass(frozen=True)
class Credentials:
    """Which gateway to call and with which token."""

    server: str
    token: str


def embedded_credentials(data_dir: Path) -> Credentials | None:
    """The running embedded stack's address and its admin token, when there is one."""
    data = DataDir(data_dir)
    if not data.admin_token.exists():
        return None
    state = data.read_state() or {}
    return Credentials(state.get("grpc", DEFAULT_SERVER), data.admin_token.read_text().strip())


def resolve_credentials(server: str | None = None, token: str | None = None) -> Credentials:
    """Flags, then SHIPYARD_SERVER / SHIPYARD_TOKEN, then what ``shipyard login`` saved."""
    saved: dict[str, str] = {}
    if config_file().exists():
        saved = json.loads(config_file().read_text())
    server = server or os.environ.get("SHIPYARD_SERVER") or saved.get("server") or DEFAULT_SERVER
    token = token or os.environ.get("SHIPYARD_TOKEN") or saved.get("token") or ""
    return Credentials(server, token)


def save_credentials(credentials: Credentials) -> Path:
    """Remember the server and token for later commands (file mode 600)."""
    path = config_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        json.dump({"server": credentials.server, "token": credentials.token}, out)
    return path


class Client:
    """Stubs of the public API with the caller's token on every call. Each service's contract
    modules are imported when its stub is first used: a command pays only for what it calls."""

    def __init__(self, credentials: Credentials, timeout: float = 30.0) -> None:
        self.credentials = credentials
        self.timeout = timeout
        self.channel = grpc.insecure_channel(credentials.server)

    @cached_property
    def projects(self) -> projects_pb2_grpc.ProjectServiceStub:
        from shipyard.contracts.repo.v1 import projects_pb2_grpc
        return projects_pb2_grpc.ProjectServiceStub(self.channel)

    @cached_property
    def repos(self) -> repos_pb2_grpc.RepoServiceStub:
        from shipyard.contracts.repo.v1 import repos_pb2_grpc
        return repos_pb2_grpc.RepoServiceStub(self.channel)

    @cached_property
    def runs(self) -> runs_pb2_grpc.RunServiceStub:
        from shipyard.contracts.run.v1 import runs_pb2_grpc
        return runs_pb2_grpc.RunServiceStub(self.channel)

    @cached_property
    def builds(self) -> builds_pb2_grpc.ImageBuildServiceStub:
        from shipyard.contracts.run.v1 import builds_pb2_grpc
        return builds_pb2_grpc.ImageBuildServiceStub(self.channel)

    @cached_property
    def tracking(self) -> tracking_pb2_grpc.TrackingServiceStub:
        from shipyard.contracts.run.v1 import tracking_pb2_grpc
        return tracking_pb2_grpc.TrackingServiceStub(self.channel)

    @cached_property
    def clusters(self) -> clusters_pb2_grpc.ClusterServiceStub:
        from shipyard.contracts.run.v1 import clusters_pb2_grpc
        return clusters_pb2_grpc.ClusterServiceStub(self.channel)

    @cached_property
    def studies(self) -> studies_pb2_grpc.StudyServiceStub:
        from shipyard.contracts.run.v1 import studies_pb2_grpc
        return studies_pb2_grpc.StudyServiceStub(self.channel)

    @cached_property
    def serving(self) -> serving_pb2_grpc.ServingServiceStub:
        from shipyard.contracts.serving.v1 import serving_pb2_grpc
        return serving_pb2_grpc.ServingServiceStub(self.channel)

    @cached_property
    def saved_credentials(self) -> credentials_pb2_grpc.CredentialServiceStub:
        from shipyard.contracts.repo.v1 import credentials_pb2_grpc
        return credentials_pb2_grpc.CredentialServiceStub(self.channel)

    @cached_property
    def images(self) -> images_pb2_grpc.ImageServiceStub:
        from shipyard.contracts.repo.v1 import images_pb2_grpc
        return images_pb2_grpc.ImageServiceStub(self.channel)

    @cached_property
    def lineage(self) -> lineage_pb2_grpc.LineageServiceStub:
        from shipyard.contracts.lineage.v1 import lineage_pb2_grpc
        return lineage_pb2_grpc.LineageServiceStub(self.channel)

    @cached_property
    def identity(self) -> gateway_pb2_grpc.IdentityServiceStub:
        from shipyard.contracts.gateway.v1 import gateway_pb2_grpc
        return gateway_pb2_grpc.IdentityServiceStub(self.channel)

    @cached_property
    def events(self) -> gateway_pb2_grpc.EventServiceStub:
        from shipyard.contracts.gateway.v1 import gateway_pb2_grpc
        return gateway_pb2_grpc.EventServiceStub(self.channel)

    @cached_property
    def platform(self) -> gateway_pb2_grpc.PlatformServiceStub:
        from shipyard.contracts.gateway.v1 import gateway_pb2_grpc
        return gateway_pb2_grpc.PlatformServiceStub(self.channel)

    @cached_property
    def webhooks(self) -> gateway_pb2_grpc.WebhookServiceStub:
        from shipyard.contracts.gateway.v1 import gateway_pb2_grpc
        return gateway_pb2_grpc.WebhookServiceStub(self.channel)

    @property
    def metadata(self) -> tuple[tuple[str, str], ...]:
        """The authorization header."""
        return (("authorization", f"Bearer {self.credentials.token}"),)

    def call(self, method: Callable[..., R], request: Message, timeout: float | None = None) -> R:
        """Call a unary method (``timeout`` seconds, default the client's); ClientError on failure."""
        try:
            return method(request, metadata=self.metadata, timeout=timeout or self.timeout)
        except grpc.RpcError as exc:
            raise self._error(exc) from None

    def _error(self, exc: grpc.RpcError) -> ClientError:
        error = _client_error(exc)
        if error.code == "UNAVAILABLE" and self.credentials.server in error.message:
            return ClientError(error.code, f"cannot reach the Shipyard gateway at {self.credentials.server} "
                                           f"({error.message})", reason=error.reason)
        return error

    def stream(self, method: Callable[..., Any], request: Message) -> Iterator[Any]:
        """Call a server-streaming method; ClientError on failure."""
        try:
            yield from method(request, metadata=self.metadata)
        except grpc.RpcError as exc:
            raise self._error(exc) from None

    def status(self) -> gateway_pb2.GetStatusResponse:
        """The platform's health."""
        from shipyard.contracts.gateway.v1 import gateway_pb2
        return self.call(self.platform.GetStatus, gateway_pb2.GetStatusRequest())

    def close(self) -> None:
        """Close the channel."""
        self.channel.close()


def _client_error(exc: grpc.RpcError) -> ClientError:
    failure = failure_of(exc)
    return ClientError(failure.code.name, failure.message, failure.field, failure.problem, failure.reason)

"""Settings of a Shipyard process, from SHIPYARD_* environment variables.

This class holds what the kit and more than one process read; each service subclasses it with
the settings only it reads (``shipyard_lineage.settings.LineageSettings``…), so the names stay uniform.
"""

from __future__ import annotations

from pathlib import Path

from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Configuration shared by the services and the gateway."""

    model_config = SettingsConfigDict(env_prefix="SHIPYARD_", extra="ignore")

    # The process's one name (repo-svc, run-svc, serving-svc, lineage-svc, gateway): its logs, its
    # folder in the data directory, its CloudEvents source, the audience of calls to it. Each
    # service's settings class sets its own.
    service: str = "shipyard"
    data_dir: Path = Path(".shipyard")
    nats_url: str = "nats://127.0.0.1:4222"
    # This process's NATS user and password (shipyard.kit.bus_access: each service has its own, and
    # may publish only its own events). Empty: connect without a credential.
    nats_user: str = ""
    nats_password: str = ""
    # Copies of the event stream kept by a NATS cluster (3 in production; 1 for one server).
    stream_replicas: int = 1
    grpc_listen: str = "127.0.0.1:0"
    # Document store URL: sqlite:///path/to.db (default under data_dir) or mongodb://host/db.
    store_url: str = ""
    # Blob store URL: file:///path (default under data_dir) or s3://KEY:SECRET@host:port/bucket.
    blob_url: str = ""
    # repo-svc's gRPC address (run-svc, serving-svc and the gateway read it; kit.clients.RepoClient).
    repo_addr: str = "127.0.0.1:50061"
    # The gateway's gRPC address (repo-svc asks its internal UserDirectory; kit.clients.users).
    gateway_addr: str = "127.0.0.1:50051"
    # Single-user mode: where runs cannot be isolated (no usable bubblewrap), anyone's runs start,
    # sharing the machine as the platform's user. Off (the default), only operators' runs start
    # there. Where runs are isolated, they are isolated either way.
    single_user: bool = False
    # The user ("uid:gid") runs run as when the platform runs as root; default nobody:nogroup,
    # which owns no files. As any other user, runs get a user namespace instead.
    run_user: str = "65534:65534"
    # Key that encrypts stored credentials (Fernet, url-safe base64 of 32 bytes). Empty: the key
    # file in the data directory, created on first start (embedded mode).
    secret_key: str = ""
    # The platform's internal key (32 random bytes, 64 hex digits or base64) that signs the caller
    # assertions of internal gRPC calls; every process needs the same one. Empty: the key file
    # (default DATA_DIR/internal.key, which `shipyard up` creates on first start).
    internal_key: str = ""
    internal_key_file: Path | None = None
    # Free bytes each service wants on every file system it writes to (its store, the blob store,
    # the data directory): below it the service reports NOT_SERVING, naming the disk.
    min_free_bytes: int = 256 << 20
    log_level: str = "INFO"
    log_file: Path | None = None
    # Tracing exporter: "" (spans kept in-process only), "console" or "otlp" (needs the OTLP package).
    otel_exporter: str = ""
    # Failure injection for tests, e.g. "outbox.hold=/path/to/file" (relay pauses while it exists).
    failpoints: str = ""

    def service_dir(self) -> Path:
        """This service's own folder in the data directory (its store's file, its working files)."""
        return self.data_dir / self.service

    def default_store_url(self) -> str:
        """The store URL, defaulting to a SQLite file of this service in the data directory."""
        return self.store_url or f"sqlite:///{(self.service_dir() / 'store.db').resolve()}"

    def default_blob_url(self) -> str:
        """The blob store URL, defaulting to the data directory's blobs folder."""
        return self.blob_url or f"file://{(self.data_dir / 'blobs').resolve()}"

    def failpoint(self, name: str) -> str | None:
        """The value of a failpoint, or None when it is not set."""
        for item in filter(None, self.failpoints.split(",")):
            key, _, value = item.partition("=")
            if key.strip() == name:
                return value.strip()
        return None

"""Settings of a Shipyard process, from SHIPYARD_* environment variables.

One class for every service keeps the names uniform; each service reads what it needs.
"""

from __future__ import annotations

from pathlib import Path

from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Configuration shared by the services and the gateway."""

    model_config = SettingsConfigDict(env_prefix="SHIPYARD_", extra="ignore")

    service: str = "shipyard"
    data_dir: Path = Path(".shipyard")
    nats_url: str = "nats://127.0.0.1:4222"
    # Copies of the event stream kept by a NATS cluster (3 in production; 1 for one server).
    stream_replicas: int = 1
    grpc_listen: str = "127.0.0.1:0"
    http_listen: str = "127.0.0.1:8080"
    # The gateway's HTTP address as clients reach it (behind a proxy or ingress); default: http_listen.
    public_http_url: str = ""
    # Document store URL: sqlite:///path/to.db (default under data_dir) or mongodb://host/db.
    store_url: str = ""
    # Blob store URL: file:///path (default under data_dir) or s3://KEY:SECRET@host:port/bucket.
    blob_url: str = ""
    repo_addr: str = "127.0.0.1:50061"
    run_addr: str = "127.0.0.1:50062"
    serving_addr: str = "127.0.0.1:50063"
    lineage_addr: str = "127.0.0.1:50064"
    admin_token_file: Path | None = None
    # Repo sources on loopback/private addresses and file:// git URLs (they reach inside the platform).
    allow_private_sources: bool = False
    # Directories (absolute, separated by ":") whose trees repo-svc may read itself to create a
    # version (CreateVersionFromPath), instead of the client uploading them. Empty: none.
    path_import_roots: str = ""
    # Runs the local executor runs at once (0: one per CPU, at least 2); the rest wait, queued.
    local_run_slots: int = 0
    # Key that encrypts stored credentials (Fernet, url-safe base64 of 32 bytes). Empty: the key
    # file in the data directory, created on first start (embedded mode).
    secret_key: str = ""
    # Webhook URLs on loopback/private/link-local addresses (the embedded stack allows them: its
    # receivers run on the same machine). Off on a shared platform: they reach inside it.
    webhook_allow_private: bool = False
    # Webhook delivery: attempts per event before it is dead-lettered, and the exponential
    # backoff between attempts (first wait, longest wait), in seconds.
    webhook_attempts: int = 10
    webhook_backoff_s: float = 0.5
    webhook_backoff_max_s: float = 60.0
    # serving-svc: how long an endpoint's load must stay low before idle replicas (above
    # min_replicas) are stopped, in seconds.
    serving_scale_down_delay_s: float = 30.0
    # lineage-svc: drop its projections at start and build them again from the whole stream.
    lineage_rebuild: bool = False
    log_level: str = "INFO"
    log_file: Path | None = None
    # Tracing exporter: "" (spans kept in-process only), "console" or "otlp" (needs the OTLP package).
    otel_exporter: str = ""
    # Failure injection for tests, e.g. "outbox.hold=/path/to/file" (relay pauses while it exists).
    failpoints: str = ""

    def default_store_url(self) -> str:
        """The store URL, defaulting to a SQLite file of this service in the data directory."""
        return self.store_url or f"sqlite:///{(self.data_dir / self.service / 'store.db').resolve()}"

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

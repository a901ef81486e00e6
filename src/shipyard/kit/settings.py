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
    # Who may ask for a path import: "operators" (the default) or "all" (the platform reads as its
    # own user, so whoever may ask reads what it can read under the roots).
    path_imports_for: str = "operators"
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
    # gateway: API tokens live token_default_ttl_days unless asked otherwise, at most
    # token_max_ttl_days; a user holds at most token_max_per_user live API tokens. A console
    # sign-in makes a session token living session_ttl_hours. A replica trusts what it read about
    # a token for token_cache_ttl_s: revocations and user changes reach every replica within it.
    token_default_ttl_days: float = 30.0
    token_max_ttl_days: float = 90.0
    token_max_per_user: int = 50
    session_ttl_hours: float = 12.0
    token_cache_ttl_s: float = 5.0
    # gateway: failed console sign-ins allowed per minute, per client address and per token id.
    sign_in_failures_per_minute: int = 10
    # gateway: calls with a bad token allowed per minute and client address; past it, its failures
    # are answered RESOURCE_EXHAUSTED / HTTP 429 (calls with good tokens still go through).
    bad_tokens_per_minute: int = 30
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
    # Free bytes each service wants on every file system it writes to (its store, the blob store,
    # the data directory): below it the service reports NOT_SERVING, naming the disk.
    min_free_bytes: int = 256 << 20
    log_level: str = "INFO"
    log_file: Path | None = None
    # Tracing exporter: "" (spans kept in-process only), "console" or "otlp" (needs the OTLP package).
    otel_exporter: str = ""
    # Failure injection for tests, e.g. "outbox.hold=/path/to/file" (relay pauses while it exists).
    failpoints: str = ""
    # Gateway HTTP edge: bytes one user may have spooled at once by console uploads (and a
    # console archive may expand to), console uploads one user may run at once, and how many
    # times its own size an uploaded archive may expand to (zip bombs).
    upload_max_bytes: int = 50 << 30
    uploads_per_user: int = 4
    extract_max_ratio: float = 100.0
    # Gateway HTTP edge: event streams (Server-Sent Events) one user may hold open at once, and
    # how often a quiet stream sends a keep-alive comment (which is how a gone client is noticed).
    watches_per_user: int = 8
    sse_heartbeat_s: float = 15.0
    # repo-svc's garbage collector: blobs no version or code snapshot references are deleted once
    # untouched (not uploaded, asked about or named) for gc_grace_s; it runs every gc_interval_s
    # (0: only when an operator asks, `shipyard admin gc`). Bytes a user may have uploaded that no
    # version of theirs names yet (0: unlimited; operators: unlimited).
    gc_grace_s: float = 24 * 3600.0
    gc_interval_s: float = 3600.0
    pending_upload_max_bytes: int = 100 << 30

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

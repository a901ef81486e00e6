"""The gateway's settings: the kit's shared ones, and those only the gateway reads."""

from __future__ import annotations

from pathlib import Path

from shipyard.kit.settings import Settings

SERVICE = "gateway"
"""The process's name: its logs, its store's folder in the data directory, its NATS user, its
CloudEvents source (shipyard/gateway), its manifests and the supervisor's child."""


class GatewaySettings(Settings):
    """Configuration of the gateway, from SHIPYARD_* environment variables."""

    service: str = SERVICE
    # The console and JSON API's address, and that address as clients reach it (behind a proxy or
    # ingress; default: http_listen).
    http_listen: str = "127.0.0.1:8080"
    public_http_url: str = ""
    # The services behind the gateway (repo-svc's address, read by others too, is the kit's).
    run_addr: str = "127.0.0.1:50062"
    serving_addr: str = "127.0.0.1:50063"
    lineage_addr: str = "127.0.0.1:50064"
    # Where the first start writes the first admin's token (None: it is not written).
    admin_token_file: Path | None = None
    # API tokens live token_default_ttl_days unless asked otherwise, at most token_max_ttl_days; a
    # user holds at most token_max_per_user live API tokens. A console sign-in makes a session token
    # living session_ttl_hours. A replica trusts what it read about a token for token_cache_ttl_s:
    # revocations and user changes reach every replica within it.
    token_default_ttl_days: float = 30.0
    token_max_ttl_days: float = 90.0
    token_max_per_user: int = 50
    session_ttl_hours: float = 12.0
    token_cache_ttl_s: float = 5.0
    # Failed console sign-ins allowed per minute, per client address and per token id.
    sign_in_failures_per_minute: int = 10
    # Calls with a bad token allowed per minute and client address; past it, its failures are
    # answered RESOURCE_EXHAUSTED / HTTP 429 (calls with good tokens still go through).
    bad_tokens_per_minute: int = 30
    # Webhook URLs on loopback/private/link-local addresses (the embedded stack allows them: its
    # receivers run on the same machine). Off on a shared platform: they reach inside it.
    webhook_allow_private: bool = False
    # Webhook delivery: attempts per event before it is dead-lettered, and the exponential
    # backoff between attempts (first wait, longest wait), in seconds.
    webhook_attempts: int = 10
    webhook_backoff_s: float = 0.5
    webhook_backoff_max_s: float = 60.0
    # The HTTP edge: bytes one user may have spooled at once by console uploads (and a console
    # archive may expand to), console uploads one user may run at once, and how many times its own
    # size an uploaded archive may expand to (zip bombs).
    upload_max_bytes: int = 50 << 30
    uploads_per_user: int = 4
    extract_max_ratio: float = 100.0
    # The HTTP edge: event streams (Server-Sent Events) one user may hold open at once, and how
    # often a quiet stream sends a keep-alive comment (which is how a gone client is noticed).
    watches_per_user: int = 8
    sse_heartbeat_s: float = 15.0

    def blob_url_for_clients(self) -> str:
        """Where clients upload and download blobs: the public HTTP address's /api/blobs."""
        return (self.public_http_url or f"http://{self.http_listen}").rstrip("/") + "/api/blobs"

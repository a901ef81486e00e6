"""What the gateway's HTTP edge allows one user at once: spooled upload bytes, uploads, archive
expansion, event streams."""

from __future__ import annotations

from dataclasses import dataclass

from shipyard_gateway.settings import GatewaySettings


@dataclass(frozen=True)
class EdgeLimits:
    """The HTTP edge's per-user limits (SHIPYARD_UPLOAD_MAX_BYTES and friends; see GatewaySettings)."""

    upload_max_bytes: int = 50 << 30
    uploads_per_user: int = 4
    extract_max_ratio: float = 100.0
    watches_per_user: int = 8
    sse_heartbeat_s: float = 15.0

    @classmethod
    def of(cls, settings: GatewaySettings) -> EdgeLimits:
        """The limits the settings give."""
        return cls(settings.upload_max_bytes, settings.uploads_per_user, settings.extract_max_ratio,
                   settings.watches_per_user, settings.sse_heartbeat_s)

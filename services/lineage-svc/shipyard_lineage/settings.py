"""lineage-svc's settings: the kit's shared ones, and those only lineage-svc reads."""

from __future__ import annotations

from shipyard.kit.settings import Settings

SERVICE = "lineage-svc"
"""The process's one name: its logs, its folder in the data directory, its callers' audience, its
NATS user, its CloudEvents source (shipyard/lineage-svc), its manifests and the supervisor's child."""


class LineageSettings(Settings):
    """Configuration of lineage-svc, from SHIPYARD_* environment variables."""

    service: str = SERVICE
    # Drop the projections at start and build them again from the whole stream.
    lineage_rebuild: bool = False

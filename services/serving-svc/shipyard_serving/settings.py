"""serving-svc's settings: the kit's shared ones, and those only serving-svc reads."""

from __future__ import annotations

from shipyard.kit.settings import Settings

SERVICE = "serving-svc"
"""The process's one name: its logs, its folder in the data directory (its store, its model servers'
files), its callers' audience, its NATS user, its CloudEvents source (shipyard/serving-svc), its
manifests and the supervisor's child."""


class ServingSettings(Settings):
    """Configuration of serving-svc, from SHIPYARD_* environment variables."""

    service: str = SERVICE
    # How long an endpoint's load must stay low before idle replicas (above min_replicas) are
    # stopped, in seconds.
    serving_scale_down_delay_s: float = 30.0
    # run-svc's gRPC address: serving-svc reads the clusters it serves models on from there
    # (kit.clients.ClusterClient).
    run_addr: str = "127.0.0.1:50062"

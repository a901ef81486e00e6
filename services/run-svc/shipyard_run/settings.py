"""run-svc's settings: the shared ones (``shipyard.kit.settings.Settings``) and those only it reads."""

from __future__ import annotations

import os
from pathlib import Path

from shipyard.kit.settings import Settings

SERVICE = "run-svc"
"""The process's one name: its logs, its folder in the data directory, its callers' audience, its
NATS user, its CloudEvents source (shipyard/run-svc), its manifests and the supervisor's child."""


class RunSettings(Settings):
    """run-svc's configuration, from SHIPYARD_* environment variables."""

    service: str = SERVICE
    # serving-svc's gRPC address: a Kubernetes cluster that serves test inferences or deployments is not
    # deleted (kit.clients.ServingClient).
    serving_addr: str = "127.0.0.1:50063"
    # Runs the local executor runs at once (0: one per CPU, at least 2); the rest wait, queued.
    local_run_slots: int = 0
    # The gateway's gRPC address as runs reach it (their SHIPYARD_SERVER, with SHIPYARD_TOKEN);
    # `shipyard up` sets it to the gateway's listen address. Empty: runs get no SHIPYARD_SERVER.
    public_grpc_addr: str = ""
    # The gateway's HTTP address as runs reach it (their SHIPYARD_API_URL: the SDK's ``call``); `shipyard
    # up` sets it. Empty: runs get no SHIPYARD_API_URL.
    public_http_url: str = ""
    # Where runs' Python environments are built, one per image digest, with uv's shared cache
    # (empty: <data dir>/run-svc/environments). Keep it on the disk of the data directory: uv installs
    # from its cache with hard links.
    environments_dir: str = ""
    # Where environments' packages come from: a package index (uv's --index-url; empty: PyPI), a
    # folder of wheels besides it (--find-links), and offline: only that folder and uv's cache.
    package_index_url: str = ""
    package_find_links: str = ""
    packages_offline: bool = False

    def environments_root(self) -> Path:
        """Where runs' Python environments are built."""
        return Path(self.environments_dir) if self.environments_dir else self.service_dir() / "environments"

    def run_slots(self) -> int:
        """Runs at once: ``local_run_slots``, or one per CPU (at least 2) when it is 0."""
        return self.local_run_slots or max(2, os.cpu_count() or 1)

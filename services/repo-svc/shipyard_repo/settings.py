"""repo-svc's settings: the kit's shared ones, and those only repo-svc reads."""

from __future__ import annotations

from shipyard.kit.settings import Settings

SERVICE = "repo-svc"
"""The process's one name: its logs, its folder in the data directory, its callers' audience, its
NATS user, its CloudEvents source (shipyard/repo-svc), its manifests and the supervisor's child."""


class RepoSettings(Settings):
    """Configuration of repo-svc, from SHIPYARD_* environment variables."""

    service: str = SERVICE
    # Repo sources on loopback/private addresses and file:// git URLs (they reach inside the platform).
    allow_private_sources: bool = False
    # Directories (absolute, separated by ":") whose trees repo-svc may read itself to create a
    # version (CreateVersionFromPath), instead of the client uploading them. Empty: none.
    path_import_roots: str = ""
    # Who may ask for a path import: "operators" (the default) or "all" (the platform reads as its
    # own user, so whoever may ask reads what it can read under the roots).
    path_imports_for: str = "operators"
    # The garbage collector: blobs no version or code snapshot references are deleted once
    # untouched (not uploaded, asked about or named) for gc_grace_s; it runs every gc_interval_s
    # (0: only when an operator asks, `shipyard admin gc`). Bytes a user may have uploaded that no
    # version of theirs names yet (0: unlimited; operators: unlimited).
    gc_grace_s: float = 24 * 3600.0
    gc_interval_s: float = 3600.0
    pending_upload_max_bytes: int = 100 << 30

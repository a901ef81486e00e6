"""Versions of a repo: immutable manifests whose files live in the content-addressed blob store."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime

from shipyard.kit.errors import FailedPrecondition, InvalidArgument

MESSAGE_MAX = 4096
MODEL_STAGES = ("default", "released", "publishing", "published", "staged", "deployed")
METRICS_MAX = 1000
_DIGEST = re.compile(r"[0-9a-f]{64}")
# The manifest of an empty version (a "none" source's version 1) is the empty blob.
EMPTY_MANIFEST = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"


@dataclass(frozen=True)
class Version:
    """One version of a repo."""

    repo_id: str
    number: int
    manifest_digest: str
    size_bytes: int
    file_count: int
    owner: str
    create_time: datetime
    message: str = ""
    produced_by_run: str = ""
    metrics: dict[str, float] = field(default_factory=dict)
    params: dict[str, str] = field(default_factory=dict)
    used_by_runs: tuple[str, ...] = ()
    stage: str = ""  # models only: "default" until published or deployed
    run_names: dict[str, str] = field(default_factory=dict)  # run id → name, of the runs above
    revision: int = 0  # as read from the store (0: new)
    labels: dict[str, str] = field(default_factory=dict)  # key-value tags (MLflow's model version tags)

    def run_name(self, run_id: str) -> str:
        """How to name a run of this version to people: its name, or its id when none was kept."""
        return self.run_names.get(run_id, run_id)

    @property
    def id(self) -> str:
        """Unique per repo and number, so two writers can never store the same version twice."""
        return version_id(self.repo_id, self.number)


def version_id(repo_id: str, number: int) -> str:
    """The stored id of a version."""
    return f"{repo_id}:{number:012d}"


def check_digest(field_name: str, digest: str) -> str:
    """A lowercase hex sha256."""
    if not _DIGEST.fullmatch(digest):
        raise InvalidArgument(
            field_name, f"must be a lowercase hex sha256 (64 characters), not {digest[:80]!r}"
        )
    return digest


def check_message(message: str) -> str:
    """A version's message: bounded, single paragraph text."""
    if len(message) > MESSAGE_MAX:
        raise InvalidArgument("message", f"must be at most {MESSAGE_MAX} characters (got {len(message)})")
    if any(ord(c) < 32 and c not in "\n\t" for c in message):
        raise InvalidArgument("message", "must not contain control characters")
    return message


def check_number(field_name: str, number: int) -> int:
    """A version number: 0 (the latest) or a positive number."""
    if number < 0:
        raise InvalidArgument(field_name, f"must be a version number ≥ 1, or 0 for the latest (got {number})")
    return number


def check_unused(versions: list[Version], force: bool) -> None:
    """FailedPrecondition when runs have read one of the versions (unless forced)."""
    used = [v for v in versions if v.used_by_runs]
    if used and not force:
        runs = sorted({v.run_name(r) for v in used for r in v.used_by_runs})
        raise FailedPrecondition(
            f"version {', '.join(str(v.number) for v in used)} was read by run {', '.join(runs[:5])}"
            f"{' and others' if len(runs) > 5 else ''}: deleting it breaks their lineage; "
            "use force to delete anyway"
        )

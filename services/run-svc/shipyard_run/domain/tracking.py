"""What a run logs through MLflow's tracking API, and the rules it is held to.

MLflow's own limits and names apply (keys up to 250 characters of letters, digits and ``_ - . / :``
and spaces, never a ``..`` segment nor a leading ``/``; params written once; at most 1000 metrics,
100 params and 100 tags a call), so code written for an MLflow server meets the same refusals here.
Experiments are projects: an experiment's id is its project's name, and the default experiment
``0`` holds the runs of no project.
"""

from __future__ import annotations

import functools
import posixpath
import re
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import Enum

from shipyard.kit.errors import InvalidArgument
from shipyard.kit.manifest import Manifest, ManifestEntry
from shipyard.kit.rules import check_name
from shipyard_run.domain.runs import MetricPoint, RunStatus

DEFAULT_EXPERIMENT = "0"
KEY_MAX = 250
PARAM_VALUE_MAX = 6000
TAG_VALUE_MAX = 8000
METRICS_PER_CALL = 1000
PARAMS_PER_CALL = 100
TAGS_PER_CALL = 100
ARTIFACT_PATH_MAX = 1024
FILE_MODE = 0o644  # artifacts' mode in a version made of them
RUN_NAME_TAG = "mlflow.runName"
_KEY = re.compile(r"[\w\-. /:]+")
_NAME_CHARS = re.compile(r"[^A-Za-z0-9_.-]+")


class TrackedStatus(Enum):
    """MLflow's run statuses."""

    RUNNING = "RUNNING"
    SCHEDULED = "SCHEDULED"
    FINISHED = "FINISHED"
    FAILED = "FAILED"
    KILLED = "KILLED"


MLFLOW_STATUS: dict[RunStatus, TrackedStatus] = {
    RunStatus.QUEUED: TrackedStatus.SCHEDULED,
    RunStatus.WAITING_FOR_GPUS: TrackedStatus.SCHEDULED,
    RunStatus.STARTING: TrackedStatus.SCHEDULED,
    RunStatus.RUNNING: TrackedStatus.RUNNING,
    RunStatus.STOPPING: TrackedStatus.RUNNING,
    RunStatus.COMPLETE: TrackedStatus.FINISHED,
    RunStatus.FAILED: TrackedStatus.FAILED,
    RunStatus.ERROR: TrackedStatus.FAILED,
    RunStatus.STOPPED: TrackedStatus.KILLED,
}
# How an external run ends when its client says so.
ENDS_AS: dict[TrackedStatus, RunStatus] = {
    TrackedStatus.FINISHED: RunStatus.COMPLETE,
    TrackedStatus.FAILED: RunStatus.FAILED,
    TrackedStatus.KILLED: RunStatus.STOPPED,
}


def check_key(field_name: str, key: str) -> str:
    """A metric, param or tag key as MLflow allows it; InvalidArgument naming what is wrong."""
    if not key or len(key) > KEY_MAX:
        raise InvalidArgument(field_name, f"{key[:80]!r}: a key must have 1 to {KEY_MAX} characters")
    if not _KEY.fullmatch(key):
        raise InvalidArgument(
            field_name,
            f"{key[:80]!r}: a key may only contain letters, digits, "
            "underscores, dashes, periods, spaces, colons and slashes",
        )
    if key.startswith("/") or ".." in key.split("/"):
        raise InvalidArgument(
            field_name,
            f"{key[:80]!r}: a key may not start with '/' nor have a '..' "
            "segment (keys name files in exports)",
        )
    return key


def check_params(params: Mapping[str, str], logged: Mapping[str, str]) -> None:
    """New params as MLflow takes them: a logged param keeps its value for good."""
    if len(params) > PARAMS_PER_CALL:
        raise InvalidArgument("params", f"{len(params)} params in one call; at most {PARAMS_PER_CALL}")
    for key, value in params.items():
        check_key("params", key)
        if len(value) > PARAM_VALUE_MAX:
            raise InvalidArgument(
                "params", f"param {key!r}: its value has {len(value)} characters; at most {PARAM_VALUE_MAX}"
            )
        if key in logged and logged[key] != value:
            raise InvalidArgument(
                "params",
                f"param {key!r} was logged as {logged[key][:100]!r}; a param's "
                f"value cannot change (new value {value[:100]!r})",
            )


def check_tags(tags: Mapping[str, str]) -> None:
    """Tags as MLflow takes them."""
    if len(tags) > TAGS_PER_CALL:
        raise InvalidArgument("tags", f"{len(tags)} tags in one call; at most {TAGS_PER_CALL}")
    for key, value in tags.items():
        check_key("tags", key)
        if len(value) > TAG_VALUE_MAX:
            raise InvalidArgument(
                "tags", f"tag {key!r}: its value has {len(value)} characters; at most {TAG_VALUE_MAX}"
            )


@dataclass(frozen=True)
class LoggedValue:
    """One metric value as a client logged it (NaN and ±inf are kept)."""

    key: str
    value: float
    step: int = 0
    timestamp_ms: int = 0
    model_id: str = ""  # linked to a logged model (log_model logs a run's points again so)


def metric_points(values: Sequence[LoggedValue], now: datetime) -> list[MetricPoint]:
    """The values as the run's metric points (one series per name with its stdout and SDK metrics)."""
    if len(values) > METRICS_PER_CALL:
        raise InvalidArgument("metrics", f"{len(values)} metrics in one call; at most {METRICS_PER_CALL}")
    points = []
    times: dict[int, datetime] = {}  # a batch's values mostly share their time: each made once
    for value in values:
        checked_key(value.key)
        when = now if value.timestamp_ms <= 0 else times.get(value.timestamp_ms)
        if when is None:
            when = times[value.timestamp_ms] = datetime.fromtimestamp(value.timestamp_ms / 1000, UTC)
        points.append(MetricPoint(value.key, float(value.value), value.step, when))
    return points


@functools.lru_cache(maxsize=4096)
def checked_key(key: str) -> str:
    """A metric's key, checked once (a run logs the same few names again and again)."""
    return check_key("metrics", key)


def point_key(point: MetricPoint) -> tuple[str, int, int, str]:
    """What makes two metric points the same point (MLflow's metric identity; NaN equals NaN)."""
    return point.name, point.step, timestamp_ms(point.time), repr(point.value)


def timestamp_ms(when: datetime) -> int:
    """Milliseconds since the epoch, as MLflow's API counts time."""
    return int(when.timestamp() * 1000)


def run_name_for(asked: str, taken: bool) -> str:
    """A platform name for a run MLflow starts: run names are unique here and MLflow's are not, so a
    name that is taken or not a valid name gets a suffix (``fit`` → ``fit-3f9a2c``)."""
    base = _NAME_CHARS.sub("-", asked).strip("-.")[:50] or "mlflow-run"
    if not taken and base == asked and _valid_name(base):
        return base
    return f"{base}-{secrets.token_hex(3)}"


def _valid_name(name: str) -> bool:
    try:
        check_name("name", name)
    except InvalidArgument:
        return False
    return True


def artifact_path(field_name: str, path: str, allow_root: bool = False) -> str:
    """A path under an artifact root, normalized ('/'-separated, no '.' segments); InvalidArgument
    for one that is absolute or would leave the root ('..')."""
    if len(path) > ARTIFACT_PATH_MAX:
        raise InvalidArgument(field_name, f"an artifact path has at most {ARTIFACT_PATH_MAX} characters")
    if "\\" in path or "\x00" in path or path.startswith("/"):
        raise InvalidArgument(field_name, f"{path[:200]!r}: an artifact path is relative, '/'-separated")
    if ".." in path.split("/"):
        raise InvalidArgument(
            field_name, f"{path[:200]!r}: an artifact path may not leave the run's artifacts ('..')"
        )
    normal = posixpath.normpath(path) if path else ""
    normal = "" if normal == "." else normal
    if not normal and not allow_root:
        raise InvalidArgument(field_name, "an artifact needs a file name")
    return normal


@dataclass(frozen=True)
class ArtifactFile:
    """One file of a run's (or a logged model's) artifacts: its content is a blob."""

    owner: str  # the run's id, or the logged model's
    path: str
    digest: str
    size: int
    revision: int = 0

    @property
    def id(self) -> str:
        """Its key in the store: one file per path of an owner."""
        return f"{self.owner}:{self.path}"


@dataclass(frozen=True)
class ArtifactEntry:
    """A listing's line: a file, or a directory with files below it."""

    path: str
    is_dir: bool
    size: int = 0
    digest: str = ""


def listing(files: Sequence[ArtifactFile], directory: str, recursive: bool) -> list[ArtifactEntry]:
    """The entries under ``directory``: its files and subdirectories, or every file below it."""
    prefix = f"{directory}/" if directory else ""
    entries: dict[str, ArtifactEntry] = {}
    for item in files:
        if not item.path.startswith(prefix):
            continue
        rest = item.path[len(prefix) :]
        head, slash, _ = rest.partition("/")
        if recursive or not slash:
            entries[item.path] = ArtifactEntry(item.path, False, item.size, item.digest)
        else:
            entries.setdefault(prefix + head, ArtifactEntry(prefix + head, True))
    return [entries[k] for k in sorted(entries)]


class LoggedModelStatus(Enum):
    """Where a logged model is: its files being uploaded, or done."""

    PENDING = "pending"
    READY = "ready"
    FAILED = "failed"


@dataclass(frozen=True)
class LoggedModel:
    """A model a run logged (MLflow 3's LoggedModel); its files are artifacts it owns."""

    id: str
    name: str
    run_id: str
    project: str
    owner: str
    create_time: datetime
    update_time: datetime
    status: LoggedModelStatus = LoggedModelStatus.PENDING
    tags: dict[str, str] = field(default_factory=dict)
    params: dict[str, str] = field(default_factory=dict)
    model_type: str = ""
    revision: int = 0


def manifest_of(files: Sequence[ArtifactFile], directory: str = "") -> Manifest:
    """The manifest of the artifact files under ``directory``, their paths relative to it (a model
    version made of them: no byte copied)."""
    prefix = f"{directory}/" if directory else ""
    chosen = sorted((f for f in files if f.path.startswith(prefix)), key=lambda f: f.path)
    return Manifest(tuple(ManifestEntry(f.path[len(prefix):], f.size, f.digest, FILE_MODE) for f in chosen))


def new_model_id() -> str:
    """A logged model's id, in MLflow's form."""
    return f"m-{secrets.token_hex(16)}"

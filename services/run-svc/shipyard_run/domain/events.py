"""What happened to runs, as domain values: the use cases and the scheduler record these, and the
app's translation (``shipyard_run.app.events``) turns each into the contract's event."""

from __future__ import annotations

from dataclasses import dataclass, field

from shipyard.kit.caller import Caller
from shipyard_run.domain.clusters import Cluster
from shipyard_run.domain.image_builds import ImageBuild
from shipyard_run.domain.runs import MetricPoint, Run
from shipyard_run.domain.studies import Study, TrialView


@dataclass(frozen=True)
class RunSubmitted:
    """The run is queued, its inputs pinned."""

    run: Run
    by: Caller


@dataclass(frozen=True)
class RunStarted:
    """The run's job started on ``executor``."""

    run: Run
    executor: str


@dataclass(frozen=True)
class MetricsLogged:
    """One batch of metric points the run logged."""

    run: Run
    points: tuple[MetricPoint, ...]


@dataclass(frozen=True)
class RunCompleted:
    """The command exited 0; ``staged`` holds each output's manifest by mount path. ``by`` is the
    run's owner with the roles it had at submit (repo-svc checks them again)."""

    run: Run
    by: Caller
    staged: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class RunFailed:
    """The command failed, or the platform could not carry the run (``run.status`` says which);
    ``last_lines`` is the end of its log."""

    run: Run
    by: Caller
    last_lines: str = ""


@dataclass(frozen=True)
class RunStopped:
    """The run was stopped, before or after it started."""

    run: Run
    by: Caller


@dataclass(frozen=True)
class RunDeleted:
    """The ended run was deleted with its metrics, config file and logs."""

    run: Run
    by: Caller


@dataclass(frozen=True)
class ArtifactsLogged:
    """Files the run (or a model it logged) stored as artifacts: their blobs are kept while it exists."""

    run: Run
    digests: tuple[str, ...]
    by: Caller


RunEvent = (RunSubmitted | RunStarted | MetricsLogged | RunCompleted | RunFailed | RunStopped | RunDeleted
            | ArtifactsLogged)
"""Every run event run-svc records."""


@dataclass(frozen=True)
class StudyStarted:
    """A run submitted with a tuning file became a study."""

    study: Study
    by: Caller


@dataclass(frozen=True)
class TrialCompleted:
    """One of the study's trials ended (in any state)."""

    study: Study
    trial: TrialView


@dataclass(frozen=True)
class StudyCompleted:
    """The study ended; ``best`` is its optimal trial (None: none succeeded)."""

    study: Study
    best: TrialView | None


@dataclass(frozen=True)
class StudyUpdated:
    """Its owner or an operator changed the study's limits (``fields``); ``resumed``: it had Succeeded and
    runs again."""

    study: Study
    fields: tuple[str, ...]
    resumed: bool
    by: Caller


StudyEvent = StudyStarted | TrialCompleted | StudyCompleted | StudyUpdated
"""Every study event run-svc records."""


@dataclass(frozen=True)
class BuildCompleted:
    """An image build completed: the image is to enter the catalog as its owner's."""

    build: ImageBuild


@dataclass(frozen=True)
class BuildFailed:
    """An image build failed (``build.status_reason`` says why)."""

    build: ImageBuild


BuildEvent = BuildCompleted | BuildFailed
"""Every image build event run-svc records."""


@dataclass(frozen=True)
class ClusterUpdated:
    """An operator changed the cluster's record: ``fields`` are those whose value changed."""

    cluster: Cluster
    fields: tuple[str, ...]
    by: Caller

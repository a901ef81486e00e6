"""The contract's events read into lineage's domain: an event in, its activity entry and its graph
facts out. The one module of lineage-svc that reads the events' protobuf messages."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from google.protobuf.message import Message

from shipyard.contracts.common.v1 import common_pb2
from shipyard.contracts.events.v1 import events_pb2 as ev
from shipyard.contracts.repo.v1 import repos_pb2
from shipyard.contracts.serving.v1 import serving_pb2
from shipyard.kit.events import Event
from shipyard_lineage.domain.activity import Activity, actor_or_service, summary_of
from shipyard_lineage.domain.facts import Facts, Stating
from shipyard_lineage.domain.graph import (
    CODE,
    DEPLOYED_AS,
    DEPLOYMENT,
    IMAGE,
    PRODUCED,
    PUBLISHED,
    PUBLISHED_AS,
    RUN,
    USED,
    code_id,
    deployment_id,
    image_id,
    published_id,
    run_id,
)


def _actor_of(data: Message) -> str:
    actor = getattr(data, "actor", None)
    return str(getattr(actor, "user", "")) if actor is not None else ""


def activity_of(event: Event) -> Activity:
    """The activity entry an event makes."""
    actor = actor_or_service(_actor_of(event.data), event.source)
    changed = list(getattr(event.data, "changed_fields", []) or [])
    summary = summary_of(event.type, event.subject, actor, changed)
    return Activity(event_id=event.id, type=event.type, subject=event.subject, project=event.project,
                    actor=actor, time=event.time, summary=summary, sequence=event.sequence)


def _kind_name(kind: int) -> str:
    return repos_pb2.RepoKind.Name(kind).removeprefix("REPO_KIND_").lower()  # type: ignore[arg-type]


def _source(repo: repos_pb2.Repo) -> dict[str, str]:
    """Where a repo's files come from, when that is a git repository (OpenLineage's source code
    location): its URL and folder; "" for any other source."""
    git = repo.source.git if repo.source.WhichOneof("kind") == "git" else repos_pb2.GitSource()
    return {"git_url": git.url, "git_path": git.path}


def _repo_created(s: Stating, e: ev.RepoCreated) -> None:
    r = e.repo
    s.repo(r.id, kind=_kind_name(r.kind), name=r.name, project=r.project, deleted="false", **_source(r))


def _repo_updated(s: Stating, e: ev.RepoUpdated) -> None:
    r = e.repo
    s.repo(r.id, kind=_kind_name(r.kind), name=r.name, project=r.project, **_source(r))


def _repo_deleted(s: Stating, e: ev.RepoDeleted) -> None:
    s.repo(e.repo_id, kind=_kind_name(e.kind), name=e.name, deleted="true")


def _version_created(s: Stating, e: ev.VersionCreated) -> None:
    version = s.version(e.repo_id, e.repo, e.repo_kind, e.version, project=e.project, deleted="false",
                        size_bytes=str(e.size_bytes), file_count=str(e.file_count),
                        manifest_digest=e.manifest_digest, owner=e.actor.user)
    if e.produced_by_run:
        s.edge(s.node(run_id(e.produced_by_run), RUN), version, PRODUCED)


def _version_deleted(s: Stating, e: ev.VersionDeleted) -> None:
    s.version(e.repo_id, e.repo, e.repo_kind, e.version, deleted="true")


def _inputs(s: Stating, run: str, inputs: list[common_pb2.VersionRef]) -> None:
    for ref in inputs:
        s.edge(s.version(ref.repo_id, ref.repo, ref.repo_kind, ref.version), run, USED)


def _run_submitted(s: Stating, e: ev.RunSubmitted) -> None:
    hyperparameters = {f"hp.{k}": v for k, v in e.hyperparameters.items()}
    run = s.node(run_id(e.run_id), RUN, name=e.name, project=e.project, subtype=e.kind, status="queued",
                 command=e.command, image=e.image, cluster=e.cluster, gpus=str(e.gpus), owner=e.actor.user,
                 submitted=s.time, deleted="false", **hyperparameters)
    _inputs(s, run, list(e.inputs))
    if e.code.repo:
        s.edge(s.node(code_id(e.code.repo, e.code.commit), CODE, repo=e.code.repo, commit=e.code.commit,
                      name=e.code.repo), run, USED)
    if e.image:
        pairs = (("url", e.image_url), ("digest", e.environment_digest))
        details = {key: value for key, value in pairs if value}
        s.edge(s.node(image_id(e.image), IMAGE, name=e.image, **details), run, USED)


def _run_started(s: Stating, e: ev.RunStarted) -> None:
    s.node(run_id(e.run_id), RUN, name=e.name, project=e.project, subtype=e.kind, status="running",
           started=s.time, executor=e.executor)


def _run_completed(s: Stating, e: ev.RunCompleted) -> None:
    metrics = {f"metric.{k}": repr(v) for k, v in e.metrics.items()}
    # What it logged through MLflow: params beside the hyperparameters, tags, how many artifacts.
    logged = {f"param.{k}": v for k, v in e.params.items()}
    logged.update({f"tag.{k}": v for k, v in e.labels.items()})
    if e.artifact_count:
        logged["artifacts"] = str(e.artifact_count)
    s.node(run_id(e.run_id), RUN, name=e.name, project=e.project, status="complete", ended=s.time, **metrics,
           **logged)


def _run_failed(s: Stating, e: ev.RunFailed) -> None:
    # Events from before RunFailed carried a status: no exit code means the platform failed.
    status = e.status or ("failed" if e.exit_code else "error")
    s.node(run_id(e.run_id), RUN, name=e.name, project=e.project, status=status, ended=s.time,
           reason=e.reason, exit_code=str(e.exit_code))


def _run_stopped(s: Stating, e: ev.RunStopped) -> None:
    s.node(run_id(e.run_id), RUN, name=e.name, project=e.project, status="stopped", ended=s.time)


def _run_deleted(s: Stating, e: ev.RunDeleted) -> None:
    s.node(run_id(e.run_id), RUN, name=e.name, project=e.project, deleted="true")


def _study_started(s: Stating, e: ev.StudyStarted) -> None:
    # The study is its run: a model version it produced shows the study, then its best trial.
    s.node(run_id(e.run_id), RUN, name=e.study, project=e.project, study=e.study, algorithm=e.algorithm,
           objective=f"{e.objective_type} {e.objective_metric}")


def _trial_completed(s: Stating, e: ev.TrialCompleted) -> None:
    s.node(run_id(e.run_id), RUN, name=e.name, project=e.project, study=e.study, trial_state=e.state)


def _study_completed(s: Stating, e: ev.StudyCompleted) -> None:
    best = {f"best.{k}": v for k, v in e.best_assignment.items()}
    if e.best_trial:
        best.update(best_trial=e.best_trial, best_objective=repr(e.best_objective))
    s.node(run_id(e.run_id), RUN, name=e.study, project=e.project, study_status=e.status,
           study_reason=e.reason, trials=str(e.trials), **best)


def _study_updated(s: Stating, e: ev.StudyUpdated) -> None:
    # Raising a succeeded study's maxTrialCount resumes it: its run runs again until the study ends anew.
    limits = {"max_trial_count": str(e.max_trial_count), "parallel_trial_count": str(e.parallel_trial_count)}
    resumed = {"status": "running", "study_status": "Running", "study_reason": "ExperimentRestarting"}
    s.node(run_id(e.run_id), RUN, name=e.study, project=e.project, **limits, **(resumed if e.resumed else {}))


def _model_published(s: Stating, e: ev.ModelPublished) -> None:
    version = s.version(e.model_id, e.model, "model", e.version)
    entry = s.node(published_id(e.catalog_name), PUBLISHED, name=e.catalog_name, project=e.project,
                   model=e.model, version=str(e.version), owner=e.actor.user, deleted="false")
    s.edge(version, entry, PUBLISHED_AS)


def _serving_status(status: int) -> str:
    return serving_pb2.ServingStatus.Name(status).removeprefix("SERVING_STATUS_").lower()  # type: ignore[arg-type]


# Every status a deployment node may hold: the dashboard counts live deployments whatever their status.
DEPLOYMENT_STATUSES = tuple(_serving_status(value) for value in serving_pb2.ServingStatus.values())


def _deployed(s: Stating, d: serving_pb2.Deployment, owner: str = "") -> None:
    status = _serving_status(d.status)
    fields = {"name": d.name, "project": d.project, "status": status, "catalog_entry": d.catalog_entry,
              "model": f"{d.model.model}@{d.model.version}", "deleted": "false"}
    if owner:
        fields["owner"] = owner
    deployment = s.node(deployment_id(d.name), DEPLOYMENT, **fields)
    if d.catalog_entry:
        entry = s.node(published_id(d.catalog_entry), PUBLISHED, name=d.catalog_entry)
        s.edge(entry, deployment, DEPLOYED_AS)


def _deployment_created(s: Stating, e: ev.DeploymentCreated) -> None:
    _deployed(s, e.deployment, e.actor.user)


def _deployment_updated(s: Stating, e: ev.DeploymentUpdated) -> None:
    _deployed(s, e.deployment)


def _deployment_deleted(s: Stating, e: ev.DeploymentDeleted) -> None:
    s.node(deployment_id(e.name), DEPLOYMENT, name=e.name, deleted="true")


def _model_unpublished(s: Stating, e: ev.ModelUnpublished) -> None:
    s.node(published_id(e.catalog_name), PUBLISHED, name=e.catalog_name, deleted="true")


_RULES: dict[type[Message], Callable[[Stating, Any], None]] = {
    ev.RepoCreated: _repo_created, ev.RepoUpdated: _repo_updated, ev.RepoDeleted: _repo_deleted,
    ev.VersionCreated: _version_created, ev.VersionDeleted: _version_deleted,
    ev.RunSubmitted: _run_submitted, ev.RunStarted: _run_started, ev.RunCompleted: _run_completed,
    ev.RunFailed: _run_failed, ev.RunStopped: _run_stopped, ev.RunDeleted: _run_deleted,
    ev.ModelPublished: _model_published, ev.ModelUnpublished: _model_unpublished,
    ev.DeploymentCreated: _deployment_created, ev.DeploymentUpdated: _deployment_updated,
    ev.DeploymentDeleted: _deployment_deleted,
    ev.StudyStarted: _study_started, ev.TrialCompleted: _trial_completed, ev.StudyCompleted: _study_completed,
    ev.StudyUpdated: _study_updated,
}


def facts_of(event: Event) -> Facts:
    """The graph facts ``event`` states (none for events that do not touch the graph)."""
    rule = _RULES.get(type(event.data))
    stating = Stating(event.sequence, event.time.isoformat())
    if rule is not None:
        rule(stating, event.data)
    return stating.facts

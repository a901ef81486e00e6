"""run-svc's one translation of its domain events into the contract's events (what the unit of
work publishes): the payloads, subjects and projects on the bus are made here and nowhere else."""

from __future__ import annotations

from typing import Any

from google.protobuf.message import Message

from shipyard.contracts.common.v1 import common_pb2
from shipyard.contracts.events.v1 import events_pb2
from shipyard.kit.caller import Caller
from shipyard.kit.events import caller_actor
from shipyard.kit.store.unit_of_work import Emitted
from shipyard.kit.timestamps import timestamp
from shipyard_run.app.build_messages import build_to_proto
from shipyard_run.app.cluster_messages import cluster_to_proto
from shipyard_run.domain import events
from shipyard_run.domain.runs import Run
from shipyard_run.domain.studies import Study, TrialView


def run_subject(run: Run) -> str:
    """The CloudEvents subject of a run's events."""
    return f"runs/{run.name}"


def study_subject(study: Study) -> str:
    """The CloudEvents subject of a study's events."""
    return f"studies/{study.name}"


def translate(event: Any) -> Emitted:
    """The contract's event for the domain event ``event``, about its run, study, image build or cluster."""
    if isinstance(event, events.BuildCompleted | events.BuildFailed):
        return _build(event)
    if isinstance(event, events.ClusterUpdated):
        return Emitted(events_pb2.ClusterUpdated(cluster=cluster_to_proto(event.cluster),
                                                 changed_fields=event.fields, actor=caller_actor(event.by)),
                       f"clusters/{event.cluster.name}", "")
    if isinstance(event, events.StudyStarted | events.TrialCompleted | events.StudyCompleted
                  | events.StudyUpdated):
        return Emitted(_study_message(event), study_subject(event.study), event.study.project)
    run: Run = event.run
    return Emitted(_message(event), run_subject(run), run.spec.project)


def _build(event: events.BuildEvent) -> Emitted:
    """BuildCompleted / BuildFailed, as the build's owner (with the roles they had when they asked)."""
    build = event.build
    actor = caller_actor(Caller(build.owner, frozenset(build.owner_roles)))
    message = build_to_proto(build)
    data: Message = (events_pb2.BuildCompleted(build=message, actor=actor)
                     if isinstance(event, events.BuildCompleted) else
                     events_pb2.BuildFailed(build=message, actor=actor))
    return Emitted(data, f"images/{build.name}", "")


def _message(event: events.RunEvent) -> Message:
    match event:
        case events.RunSubmitted():
            return _submitted(event)
        case events.RunStarted(run=run, executor=executor):
            return events_pb2.RunStarted(run_id=run.id, name=run.name, project=run.spec.project,
                                         kind=run.spec.kind.value, executor=executor, notes=run.notes)
        case events.MetricsLogged(run=run, points=points):
            times = {when: timestamp(when) for when in {p.time for p in points}}  # shared by most points
            return events_pb2.RunMetricsLogged(
                run_id=run.id, name=run.name, project=run.spec.project,
                values=[common_pb2.MetricValue(name=p.name, value=p.value, step=p.step, time=times[p.time])
                        for p in points],
            )
        case events.RunCompleted():
            return _completed(event)
        case events.RunFailed(run=run, by=by, last_lines=last_lines):
            return events_pb2.RunFailed(run_id=run.id, name=run.name, project=run.spec.project,
                                        kind=run.spec.kind.value, reason=run.status_reason,
                                        exit_code=run.exit_code, last_log_lines=last_lines,
                                        actor=caller_actor(by), status=run.status.value)
        case events.RunStopped(run=run, by=by):
            return events_pb2.RunStopped(run_id=run.id, name=run.name, project=run.spec.project,
                                         kind=run.spec.kind.value, actor=caller_actor(by))
        case events.RunDeleted(run=run, by=by):
            return events_pb2.RunDeleted(run_id=run.id, name=run.name, project=run.spec.project,
                                         actor=caller_actor(by))
        case events.ArtifactsLogged(run=run, digests=digests, by=by):
            return events_pb2.RunArtifactsLogged(run_id=run.id, name=run.name, project=run.spec.project,
                                                 digests=digests, actor=caller_actor(by))
    raise TypeError(f"run-svc has no event for {type(event).__name__}")


def _study_message(event: events.StudyEvent) -> Message:
    study = event.study
    match event:
        case events.StudyStarted(by=by):
            spec = study.spec
            return events_pb2.StudyStarted(
                study=study.name, run_id=study.id, project=study.project,
                algorithm=spec["algorithm"]["algorithmName"],
                objective_metric=spec["objective"]["objectiveMetricName"],
                objective_type=spec["objective"]["type"], parallel_trial_count=spec["parallelTrialCount"],
                max_trial_count=spec.get("maxTrialCount", 0), actor=caller_actor(by))
        case events.TrialCompleted(trial=trial):
            return events_pb2.TrialCompleted(
                study=study.name, name=trial.name, run_id=trial.run.id, project=study.project,
                number=trial.number, state=trial.state.value, assignment=trial.assignment,
                objective=trial.objective or 0.0, has_objective=trial.objective is not None)
        case events.StudyCompleted(best=best):
            return _study_completed(study, best)
        case events.StudyUpdated(fields=fields, resumed=resumed, by=by):
            limits = study.limits
            return events_pb2.StudyUpdated(
                study=study.name, run_id=study.id, project=study.project, changed_fields=fields,
                parallel_trial_count=limits.parallel, max_trial_count=limits.most or 0,
                max_failed_trial_count=-1 if limits.failed is None else limits.failed, resumed=resumed,
                actor=caller_actor(by))
    raise TypeError(f"run-svc has no event for {type(event).__name__}")


def _study_completed(study: Study, best: TrialView | None) -> events_pb2.StudyCompleted:
    message = events_pb2.StudyCompleted(study=study.name, run_id=study.id, project=study.project,
                                        status=study.status.value, reason=study.reason, message=study.message,
                                        trials=study.next_trial)
    if best is not None:
        message.best_trial, message.best_trial_run_id = best.name, best.run.id
        message.best_assignment.update(best.assignment)
        message.best_objective = best.objective or 0.0
    return message


def _submitted(event: events.RunSubmitted) -> events_pb2.RunSubmitted:
    """RunSubmitted: the inputs pinned."""
    run, spec = event.run, event.run.spec
    return events_pb2.RunSubmitted(
        run_id=run.id, name=spec.name, project=spec.project, kind=spec.kind.value,
        code=common_pb2.CodeRef(repo=spec.code, commit=spec.commit) if spec.code else None,
        inputs=[common_pb2.VersionRef(repo=i.repo, version=i.version, mount_path=i.mount_path,
                                      repo_kind=i.repo_kind, repo_id=i.repo_id) for i in spec.inputs],
        outputs=[common_pb2.VersionRef(repo=o.repo, mount_path=o.mount_path, repo_kind=o.repo_kind,
                                       repo_id=o.repo_id) for o in spec.outputs],
        hyperparameters=spec.hyperparameters,
        image=spec.environment.image if spec.environment else spec.image, cluster=spec.cluster or "local",
        command=spec.command, actor=caller_actor(event.by), gpus=spec.gpus,
        image_url=spec.environment.url if spec.environment else "",
        environment_digest=spec.environment.digest if spec.environment else "",
    )


def _completed(event: events.RunCompleted) -> events_pb2.RunCompleted:
    """RunCompleted with each output's staged manifest and the repo it was authorized to write; outputs
    that are not to become versions (a study's trials', unless kept) are not staged, and not named."""
    run = event.run
    return events_pb2.RunCompleted(
        run_id=run.id, name=run.name, project=run.spec.project, kind=run.spec.kind.value,
        outputs=[common_pb2.RunOutput(repo_kind=o.repo_kind, repo=o.repo, repo_id=o.repo_id,
                                      manifest_digest=event.staged[o.mount_path], mount_path=o.mount_path)
                 for o in run.spec.outputs if o.mount_path in event.staged],
        metrics=run.metrics, hyperparameters=run.spec.hyperparameters, actor=caller_actor(event.by),
        params=run.params, labels=run.labels, artifact_count=run.artifact_count,
    )

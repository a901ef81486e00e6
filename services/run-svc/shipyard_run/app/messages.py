"""Runs as protobuf: the API's messages (the events are ``shipyard_run.app.events``'s)."""

from __future__ import annotations

from google.protobuf.timestamp_pb2 import Timestamp

from shipyard.contracts.run.v1 import runs_pb2 as pb
from shipyard.kit.errors import InvalidArgument
from shipyard.kit.timestamps import timestamp
from shipyard_run.domain.runs import (
    Distribution,
    Environment,
    Input,
    OutputTarget,
    Run,
    RunKind,
    RunSpec,
    RunStatus,
    RunTemplate,
)

KINDS = {RunKind.TRAINING: pb.RUN_KIND_TRAINING, RunKind.PREPROCESSING: pb.RUN_KIND_PREPROCESSING,
         RunKind.EVALUATION: pb.RUN_KIND_EVALUATION, RunKind.TRIAL: pb.RUN_KIND_TRIAL}
STATUSES = {
    RunStatus.QUEUED: pb.RUN_STATUS_QUEUED, RunStatus.WAITING_FOR_GPUS: pb.RUN_STATUS_WAITING_FOR_GPUS,
    RunStatus.STARTING: pb.RUN_STATUS_STARTING, RunStatus.RUNNING: pb.RUN_STATUS_RUNNING,
    RunStatus.COMPLETE: pb.RUN_STATUS_COMPLETE, RunStatus.FAILED: pb.RUN_STATUS_FAILED,
    RunStatus.STOPPING: pb.RUN_STATUS_STOPPING, RunStatus.STOPPED: pb.RUN_STATUS_STOPPED,
    RunStatus.ERROR: pb.RUN_STATUS_ERROR,
}
_KIND_OF: dict[int, RunKind] = {number: kind for kind, number in KINDS.items()}
_STATUS_OF: dict[int, RunStatus] = {number: status for status, number in STATUSES.items()}

DISTRIBUTIONS = {pb.DISTRIBUTION_NONE: Distribution.NONE, pb.DISTRIBUTION_AUTOMATIC: Distribution.AUTOMATIC,
                 pb.DISTRIBUTION_MANUAL: Distribution.MANUAL}
DISTRIBUTION_NUMBERS = {value: number for number, value in DISTRIBUTIONS.items()}

def kind_from_proto(number: int, required: bool = True) -> RunKind | None:
    """The run kind of an enum number; unspecified is training when required, else None."""
    if number == pb.RUN_KIND_UNSPECIFIED:
        return RunKind.TRAINING if required else None
    if number not in _KIND_OF:
        raise InvalidArgument("kind", f"unknown run kind {number}")
    return _KIND_OF[number]


def status_from_proto(number: int) -> RunStatus | None:
    """The status of an enum number; None for unspecified."""
    if number == pb.RUN_STATUS_UNSPECIFIED:
        return None
    if number not in _STATUS_OF:
        raise InvalidArgument("status", f"unknown run status {number}")
    return _STATUS_OF[number]


def spec_from_proto(run: pb.Run) -> RunSpec:
    """What the user asked for, unchecked."""
    kind = kind_from_proto(run.kind)
    assert kind is not None
    return RunSpec(
        name=run.name, kind=kind, command=run.command, project=run.project, description=run.description,
        tags=tuple(run.tags), framework=run.framework or "custom", framework_version=run.framework_version,
        image=run.image,
        inputs=tuple(Input(i.repo_kind, i.repo, i.mount_path, i.version) for i in run.inputs),
        outputs=tuple(OutputTarget(o.repo_kind, o.repo, o.mount_path) for o in run.outputs),
        hyperparameters=dict(run.hyperparameters), config_file_name=run.config_file_name, gpus=run.gpus,
        start_with_available=run.start_with_available, cluster=run.cluster, code=run.code, commit=run.commit,
        priority=run.priority, time_limit=run.time_limit, account=run.account,
        distribution=DISTRIBUTIONS.get(run.distribution, Distribution.NONE), workers=run.workers,
    )


def spec_to_proto(spec: RunSpec) -> pb.Run:
    """What was asked for, as the API's Run (no status, times or results)."""
    return pb.Run(
        name=spec.name, project=spec.project, description=spec.description, tags=spec.tags,
        kind=KINDS[spec.kind], command=spec.command, framework=spec.framework,
        framework_version=spec.framework_version, image=spec.image,
        inputs=[pb.RunInput(repo_kind=i.repo_kind, repo=i.repo, version=i.version, mount_path=i.mount_path)
                for i in spec.inputs],
        outputs=[pb.RunOutputTarget(repo_kind=o.repo_kind, repo=o.repo, mount_path=o.mount_path)
                 for o in spec.outputs],
        hyperparameters=spec.hyperparameters, config_file_name=spec.config_file_name, gpus=spec.gpus,
        start_with_available=spec.start_with_available, cluster=spec.cluster, code=spec.code,
        commit=spec.commit, priority=spec.priority, environment=environment_to_proto(spec.environment),
        time_limit=spec.time_limit, account=spec.account,
        distribution=DISTRIBUTION_NUMBERS[spec.distribution], workers=spec.workers,
    )


def environment_to_proto(environment: Environment | None) -> pb.RunEnvironment | None:
    """The pinned environment as the API shows it (None before images existed)."""
    if environment is None:
        return None
    return pb.RunEnvironment(image=environment.image, url=environment.url, python=environment.python,
                             requirements=environment.requirements, digest=environment.digest,
                             framework=environment.framework, framework_version=environment.framework_version)


def _time_ms(ms: int) -> Timestamp:
    when = Timestamp()
    when.FromMilliseconds(ms)
    return when


def run_to_proto(run: Run) -> pb.Run:
    """The API's view of a run."""
    message = spec_to_proto(run.spec)
    message.MergeFrom(pb.Run(
        id=run.id, status=STATUSES[run.status], status_reason=run.status_reason, exit_code=run.exit_code,
        owner=run.owner, create_time=timestamp(run.create_time), start_time=timestamp(run.start_time),
        end_time=timestamp(run.end_time), metrics=run.metrics, revision=run.revision, notes=run.notes,
        params=run.params, labels=run.labels, external=run.external, artifact_count=run.artifact_count,
        study=run.study, tuning=run.tuning,
        latest_metrics={name: pb.MetricPoint(step=step, value=run.metrics[name], time=_time_ms(ms))
                        for name, (step, ms) in run.metric_marks.items() if name in run.metrics},
    ))
    return message


def template_to_proto(template: RunTemplate, has_config: bool) -> pb.RunTemplate:
    """The API's view of a template."""
    return pb.RunTemplate(id=template.id, name=template.name, description=template.description,
                          run=spec_to_proto(template.spec), owner=template.owner,
                          create_time=timestamp(template.create_time), has_config_file=has_config)


def over_template(template: RunSpec, given: pb.Run) -> RunSpec:
    """The template's settings with the fields set in ``given`` laid over them: inputs, outputs and
    tags replace the template's when given, hyperparameters merge (``given``'s win)."""
    merged = spec_to_proto(template)
    for repeated in ("inputs", "outputs", "tags"):
        if getattr(given, repeated):
            merged.ClearField(repeated)
    merged.MergeFrom(given)
    return spec_from_proto(merged)

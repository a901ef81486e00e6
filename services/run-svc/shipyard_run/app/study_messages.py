"""Studies and trials as protobuf: the StudyService's messages."""

from __future__ import annotations

import json

from shipyard.contracts.run.v1 import studies_pb2 as pb
from shipyard.kit.timestamps import timestamp
from shipyard_run.app.messages import STATUSES
from shipyard_run.app.studies import StudyState
from shipyard_run.app.trial_views import trials_revision
from shipyard_run.domain.studies import StudyStatus, TrialView
from shipyard_run.domain.trials import TrialState

STUDY_STATUSES = {
    StudyStatus.CREATED: pb.STUDY_STATUS_CREATED, StudyStatus.RUNNING: pb.STUDY_STATUS_RUNNING,
    StudyStatus.SUCCEEDED: pb.STUDY_STATUS_SUCCEEDED, StudyStatus.FAILED: pb.STUDY_STATUS_FAILED,
    StudyStatus.STOPPED: pb.STUDY_STATUS_STOPPED,
}
TRIAL_STATES = {
    TrialState.CREATED: pb.TRIAL_STATE_CREATED, TrialState.RUNNING: pb.TRIAL_STATE_RUNNING,
    TrialState.SUCCEEDED: pb.TRIAL_STATE_SUCCEEDED, TrialState.KILLED: pb.TRIAL_STATE_KILLED,
    TrialState.FAILED: pb.TRIAL_STATE_FAILED,
    TrialState.METRICS_UNAVAILABLE: pb.TRIAL_STATE_METRICS_UNAVAILABLE,
    TrialState.EARLY_STOPPED: pb.TRIAL_STATE_EARLY_STOPPED,
}


def trial_to_proto(trial: TrialView) -> pb.Trial:
    """The API's view of a trial."""
    run = trial.run
    return pb.Trial(
        name=trial.name, number=trial.number, state=TRIAL_STATES[trial.state], assignment=trial.assignment,
        metrics=[pb.TrialMetric(name=name, min=m.min, max=m.max, latest=m.latest)
                 for name, m in trial.metrics.items()],
        objective=trial.objective or 0.0, has_objective=trial.objective is not None,
        run_status=STATUSES[run.status], status_reason=run.status_reason,
        create_time=timestamp(run.create_time), start_time=timestamp(run.start_time),
        end_time=timestamp(run.end_time),
    )


def study_to_proto(state: StudyState) -> pb.Study:
    """The API's view of a study: its record, its trials counted per state, and its optimal trial."""
    study, spec, counts = state.study, state.spec, state.counts
    # An ended study shows the optimal trial it ended with; a running one, the best so far.
    best = (next((t for t in state.trials if t.name == study.best_trial), None) if study.status.final
            else state.best)
    message = pb.Study(
        name=study.name, run_id=study.id, owner=study.owner, project=study.project,
        status=STUDY_STATUSES[study.status], reason=study.reason, message=study.message,
        spec_json=json.dumps(study.spec, sort_keys=True), algorithm=spec.algorithm.name,
        objective_metric=spec.objective.metric, objective_type=spec.objective.type,
        parallel_trial_count=spec.parallel_trial_count, max_trial_count=spec.max_trial_count or 0,
        max_failed_trial_count=-1 if spec.max_failed_trial_count is None else spec.max_failed_trial_count,
        trials=study.next_trial,
        counts=pb.TrialCounts(
            created=counts[TrialState.CREATED], running=counts[TrialState.RUNNING],
            succeeded=counts[TrialState.SUCCEEDED], killed=counts[TrialState.KILLED],
            failed=counts[TrialState.FAILED], metrics_unavailable=counts[TrialState.METRICS_UNAVAILABLE],
            early_stopped=counts[TrialState.EARLY_STOPPED]),
        keep_trial_outputs=study.keep_trial_outputs, create_time=timestamp(study.create_time),
        completion_time=timestamp(study.completion_time), revision=study.revision,
        resume_policy=spec.resume_policy, trials_revision=trials_revision(state.trials),
    )
    if best is not None:
        message.best_trial.CopyFrom(trial_to_proto(best))
    return message

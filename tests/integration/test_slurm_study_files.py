"""A hyperparameter study with a File metrics collector on a real Slurm cluster through the whole stack
(``loopback_slurm``): run-svc reads the trial's metrics file on the login node while the trial runs — its
values show before it ends — and once more when it exits, and the study completes with the objective values
from the file (what the trial prints is not what the File collector reads)."""

from __future__ import annotations

import yaml

from shipyard.client.connection import Client
from shipyard.contracts.run.v1 import runs_pb2 as pb
from shipyard.contracts.run.v1 import studies_pb2 as spb
from shipyard.local.harness import wait_for
from shipyard.local.slurm import LoopbackSlurm
from tests.support.slurm import add_loopback_cluster

# The trial writes one value, waits for the test to see it (the file ``go`` appears), then writes its last.
TRIAL = """
mkdir -p log
value="${1#--lr=}"
echo "accuracy=$value" >> log/metrics.log
echo "accuracy=0.99 printed, not in the file"
while [ ! -e go ]; do sleep 0.2; done
echo "accuracy=0.$(( ${value#0.} + 1 ))" >> log/metrics.log
"""


def _tuning() -> bytes:
    return yaml.safe_dump({
        "objective": {"type": "maximize", "objectiveMetricName": "accuracy"},
        "algorithm": {"algorithmName": "grid"}, "parallelTrialCount": 2, "maxTrialCount": 2,
        "parameters": [{"name": "lr", "parameterType": "categorical",
                        "feasibleSpace": {"list": ["0.3", "0.5"]}}],
        "metricsCollectorSpec": {"collector": {"kind": "File"},
                                 "source": {"fileSystemPath": {"path": "/log/metrics.log", "kind": "File"}}},
    }).encode()


def _trials(admin: Client) -> list[spb.Trial]:
    return list(admin.call(admin.studies.ListTrials, spb.ListTrialsRequest(study="files")).trials)


def _latest(trial: spb.Trial) -> float | None:
    return next((m.latest for m in trial.metrics if m.name == "accuracy"), None)


def test_a_study_on_slurm_reads_its_trials_metrics_files_while_they_run_and_at_their_end(
        admin: Client, loopback_slurm: LoopbackSlurm) -> None:
    cluster = add_loopback_cluster(admin, loopback_slurm, "files")
    admin.call(admin.runs.SubmitRun, pb.SubmitRunRequest(
        run=pb.Run(name="files", cluster=cluster, command='sh "$SHIPYARD_CONFIG"',
                   config_file_name="trial.sh"),
        config_file=TRIAL.encode(), tuning=_tuning()))
    wait_for(lambda: sorted((t.state, _latest(t) or 0.0) for t in _trials(admin)) == [
        (spb.TRIAL_STATE_RUNNING, 0.3), (spb.TRIAL_STATE_RUNNING, 0.5)], 120,
        "both trials to run, their first values read from their files")
    for trial in _trials(admin):
        run = admin.call(admin.runs.GetRun, pb.GetRunRequest(name=trial.name))
        go = loopback_slurm.work_dir / "runs" / run.id / "code" / "go"
        go.touch()
    wait_for(lambda: admin.call(admin.studies.GetStudy, spb.GetStudyRequest(name="files")).status
             == spb.STUDY_STATUS_SUCCEEDED, 120, "the study to succeed")
    assert sorted((t.state, t.objective) for t in _trials(admin)) == [(spb.TRIAL_STATE_SUCCEEDED, 0.4),
                                                                      (spb.TRIAL_STATE_SUCCEEDED, 0.6)]
    best = admin.call(admin.runs.GetRun, pb.GetRunRequest(name="files"))
    assert best.status == pb.RUN_STATUS_COMPLETE and best.metrics["accuracy"] == 0.6

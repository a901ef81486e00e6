"""Changing a study's limits and resuming it (Katib's resumePolicy) on the whole stack: a study of 2 one-line
trials with resumePolicy LongRunning succeeds, ``shipyard study edit`` raises maxTrialCount to 4, run-svc is
killed (-9) and comes back, and the study resumes and ends with exactly 4 trials, its run complete again and
a model version per optimal trial; a study with resumePolicy Never is refused."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from conftest import cli

from shipyard.client.connection import Client
from shipyard.contracts.repo.v1 import repos_pb2
from shipyard.contracts.run.v1 import runs_pb2 as pb
from shipyard.contracts.run.v1 import studies_pb2 as spb
from shipyard.local.harness import Stack, wait_for

TRAIN = ("import os, pathlib, sys; lr = float(sys.argv[1].split('=')[1]); print(f'accuracy={1 - lr}'); "
         "pathlib.Path(os.environ['SHIPYARD_OUTPUT'], 'model.txt').write_text(str(lr))\n")
DONE = (spb.STUDY_STATUS_SUCCEEDED, spb.STUDY_STATUS_FAILED, spb.STUDY_STATUS_STOPPED)


def _tuning(tmp_path: Path, policy: str) -> Path:
    spec = {"objective": {"type": "maximize", "objectiveMetricName": "accuracy"},
            "algorithm": {"algorithmName": "random"}, "parallelTrialCount": 2, "maxTrialCount": 2,
            "resumePolicy": policy,
            "parameters": [{"name": "lr", "parameterType": "double",
                            "feasibleSpace": {"min": "0.01", "max": "0.9"}}]}
    path = tmp_path / f"tuning-{policy}.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


def _submit(stack: Stack, home: Path, tmp_path: Path, name: str, policy: str) -> None:
    (tmp_path / "train.py").write_text(TRAIN)
    cli(stack, home, "run", "submit", name, "--command", 'python "$SHIPYARD_CONFIG"', "--config",
        str(tmp_path / "train.py"), "--model-out", "resumed", "--tuning", str(_tuning(tmp_path, policy)))


def _study(admin: Client, name: str) -> spb.Study:
    return admin.call(admin.studies.GetStudy, spb.GetStudyRequest(name=name))


def _ended(admin: Client, name: str) -> spb.Study:
    wait_for(lambda: _study(admin, name).status in DONE, 180, f"study {name} to end")
    return _study(admin, name)


def _made_by(admin: Client) -> set[str]:
    listed = admin.call(admin.repos.ListVersions, repos_pb2.ListVersionsRequest(
        kind=repos_pb2.REPO_KIND_MODEL, repo="resumed", page_size=100))
    return {v.produced_by_run for v in listed.versions if v.produced_by_run}


@pytest.fixture(scope="module")
def model_repo(admin: Client) -> None:
    admin.call(admin.repos.CreateRepo, repos_pb2.CreateRepoRequest(repo=repos_pb2.Repo(
        kind=repos_pb2.REPO_KIND_MODEL, name="resumed", versioning=repos_pb2.VERSIONING_DVS,
        source=repos_pb2.Source(none=repos_pb2.NoSource()))))


@pytest.mark.usefixtures("model_repo")
def test_a_long_running_study_raised_to_4_trials_resumes_and_ends_with_exactly_4(
        stack: Stack, home: Path, admin: Client, tmp_path: Path) -> None:
    _submit(stack, home, tmp_path, "resume-1", "LongRunning")
    first = _ended(admin, "resume-1")
    assert (first.status, first.reason, first.trials) == (
        spb.STUDY_STATUS_SUCCEEDED, "ExperimentMaxTrialsReached", 2), first
    study_run = admin.call(admin.runs.GetRun, pb.GetRunRequest(name="resume-1"))
    wait_for(lambda: _made_by(admin) == {study_run.id}, 60, "the first end's model version")

    out = cli(stack, home, "study", "edit", "resume-1", "--max-trials", "4").stdout
    assert "Changed study resume-1 (Running)" in out and "maxTrialCount 4" in out, out
    resumed = admin.call(admin.runs.GetRun, pb.GetRunRequest(name="resume-1"))
    assert "study resumed by admin: maxTrialCount raised to 4" in resumed.notes, resumed.notes
    old_pid = stack.kill("run-svc")  # the new limit and the resume are stored, not in memory
    stack.wait_restarted("run-svc", old_pid)

    second = _ended(admin, "resume-1")
    assert (second.status, second.reason, second.trials, second.max_trial_count) == (
        spb.STUDY_STATUS_SUCCEEDED, "ExperimentMaxTrialsReached", 4, 4), second
    trials = admin.call(admin.runs.ListRuns, pb.ListRunsRequest(study="resume-1", page_size=100)).runs
    assert sorted(t.name for t in trials) == [f"resume-1-t{n:03d}" for n in range(1, 5)]
    done = admin.call(admin.runs.GetRun, pb.GetRunRequest(name="resume-1"))
    assert done.status == pb.RUN_STATUS_COMPLETE
    # A new version only when the optimal trial changed, made by that trial's run.
    expected = {study_run.id}
    if second.best_trial.name != first.best_trial.name:
        expected.add(next(t.id for t in trials if t.name == second.best_trial.name))
    wait_for(lambda: _made_by(admin) == expected, 60, f"the versions of {expected}")


@pytest.mark.usefixtures("model_repo")
def test_a_study_whose_resume_policy_is_never_is_refused(stack: Stack, home: Path, admin: Client,
                                                         tmp_path: Path) -> None:
    _submit(stack, home, tmp_path, "never-1", "Never")
    assert _ended(admin, "never-1").status == spb.STUDY_STATUS_SUCCEEDED
    refused = cli(stack, home, "study", "edit", "never-1", "--max-trials", "4", check=False)
    assert refused.returncode != 0
    assert "resumePolicy is Never" in refused.stdout + refused.stderr
    assert _study(admin, "never-1").status == spb.STUDY_STATUS_SUCCEEDED

"""Attacks on hyperparameter studies: another user stops someone's study (through StopStudy, or by stopping
its run or one of its trials) — refused, as for runs; and a tuning file whose categorical values carry shell
syntax gets its values to the trial as literal flags, never run by the shell.

Reading: runs of any project are readable by anyone signed in (GetRun checks no project), and studies mirror
that; there is no private project's study to hide."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import yaml

from shipyard.client.connection import Client, ClientError
from shipyard.contracts.run.v1 import runs_pb2 as pb
from shipyard.contracts.run.v1 import studies_pb2 as spb
from shipyard.local.harness import Stack, wait_for
from tests.support.users import signed_in

WAITS = "import sys, time\nprint('trial', sys.argv[1:], flush=True)\ntime.sleep(120)\n"
SHOWS = "import sys\nprint('argv', sys.argv[1:], flush=True)\nprint('accuracy=0.5')\n"
INJECTED = "x; echo INJECTED-$((6*7)) `echo TICKS-$((6*7))` $(echo SUBST-$((6*7)))"
ENDED = (pb.RUN_STATUS_COMPLETE, pb.RUN_STATUS_FAILED, pb.RUN_STATUS_STOPPED, pb.RUN_STATUS_ERROR)


def _tuning(values: list[str], trials: int = 2) -> bytes:
    return yaml.safe_dump({
        "objective": {"type": "maximize", "objectiveMetricName": "accuracy"},
        "algorithm": {"algorithmName": "grid"}, "parallelTrialCount": trials, "maxTrialCount": trials,
        "parameters": [{"name": "opt", "parameterType": "categorical", "feasibleSpace": {"list": values}}],
    }).encode()


def _submit(client: Client, name: str, script: str, tuning: bytes) -> None:
    client.call(client.runs.SubmitRun, pb.SubmitRunRequest(
        run=pb.Run(name=name, command='python "$SHIPYARD_CONFIG"', config_file_name="train.py"),
        config_file=script.encode(), tuning=tuning))


def _trials(client: Client, study: str) -> list[pb.Run]:
    return list(client.call(client.runs.ListRuns, pb.ListRunsRequest(study=study, page_size=100)).runs)


@pytest.fixture(scope="module")
def alice(stack: Stack, admin: Client) -> Iterator[Client]:
    client = signed_in(stack, admin, "alice")
    yield client
    client.close()


@pytest.fixture(scope="module")
def bob(stack: Stack, admin: Client) -> Iterator[Client]:
    client = signed_in(stack, admin, "bob")
    yield client
    client.close()


def test_another_user_cannot_stop_her_study_its_run_or_its_trials(alice: Client, bob: Client) -> None:
    _submit(alice, "alice-study", WAITS, _tuning(["sgd", "adam"]))
    wait_for(lambda: sum(t.status == pb.RUN_STATUS_RUNNING for t in _trials(alice, "alice-study")) == 2, 90,
             "alice's two trials to run")
    attempts = [
        lambda: bob.call(bob.studies.StopStudy, spb.StopStudyRequest(name="alice-study")),
        lambda: bob.call(bob.runs.StopRun, pb.StopRunRequest(name="alice-study")),
        lambda: bob.call(bob.runs.StopRun, pb.StopRunRequest(name="alice-study-t001")),
    ]
    for attempt in attempts:
        with pytest.raises(ClientError) as refused:
            attempt()
        assert refused.value.code == "PERMISSION_DENIED", refused.value
    study = bob.call(bob.studies.GetStudy, spb.GetStudyRequest(name="alice-study"))  # reading, as for runs
    assert study.status == spb.STUDY_STATUS_RUNNING and study.counts.running == 2

    alice.call(alice.studies.StopStudy, spb.StopStudyRequest(name="alice-study"))
    wait_for(lambda: alice.call(alice.studies.GetStudy, spb.GetStudyRequest(name="alice-study")).status
             == spb.STUDY_STATUS_STOPPED, 60, "alice's study to stop")
    assert {t.status for t in _trials(alice, "alice-study")} == {pb.RUN_STATUS_STOPPED}


def test_a_categorical_value_with_shell_syntax_reaches_the_trial_as_a_literal_flag(alice: Client) -> None:
    _submit(alice, "inject", SHOWS, _tuning([INJECTED], trials=1))
    wait_for(lambda: alice.call(alice.studies.GetStudy, spb.GetStudyRequest(name="inject")).status
             == spb.STUDY_STATUS_SUCCEEDED, 90, "the study to succeed")
    (trial,) = _trials(alice, "inject")
    log = alice.call(alice.runs.ReadRunLogs, pb.ReadRunLogsRequest(name=trial.name, max_bytes=1 << 20)).data
    text = log.decode()
    assert repr([f"--opt={INJECTED}"]) in text, text
    for marker in ("INJECTED-42", "TICKS-42", "SUBST-42"):
        assert marker not in text, text

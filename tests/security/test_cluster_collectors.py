"""Attacks on a study's File collector, on the local executor (read by run-svc, outside the trial's
sandbox) and on a Slurm cluster (a real one on loopback) where every run goes under the cluster's one
account: the collector reads the trial's metrics file on the login node as that account, so a trial tries
to make it read what it must not — through a link to the account's home (its keys), to another run's job
directory, to /dev/zero, through a linked directory, from a FIFO that never ends, a file of gigabytes, and a
collector path with ``..``. None is read, none holds run-svc up, and honest trials still get their objective
from their file."""

from __future__ import annotations

import os
import pwd
import shlex
from pathlib import Path

import yaml

from shipyard.client.connection import Client
from shipyard.contracts.run.v1 import runs_pb2 as pb
from shipyard.contracts.run.v1 import studies_pb2 as spb
from shipyard.local.harness import wait_for
from shipyard.local.slurm import LoopbackSlurm
from tests.support.slurm import add_loopback_cluster

ENDED = (spb.STUDY_STATUS_SUCCEEDED, spb.STUDY_STATUS_FAILED, spb.STUDY_STATUS_STOPPED)
SUCCEEDED, UNAVAILABLE = "TRIAL_STATE_SUCCEEDED", "TRIAL_STATE_METRICS_UNAVAILABLE"


def _owned(path: Path, text: str, user: str) -> None:
    """A file of the cluster's account (and the folders made for it), outside any job's working directory."""
    account = pwd.getpwnam(user)
    missing = [folder for folder in reversed(path.parents) if not folder.exists()]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    for made in (*missing, path):
        os.chown(made, account.pw_uid, account.pw_gid)


def _attacks(secret: Path, other_code: Path) -> str:
    """The trial's script: ``--attack=NAME`` lays out ``out/metrics.log`` (the collector's path) so."""
    cases = {
        "honest": "echo accuracy=0.5 > out/metrics.log",
        "home": f"ln -s {shlex.quote(str(secret))} out/metrics.log",
        "other-run": f"ln -s {shlex.quote(str(other_code / 'metrics.log'))} out/metrics.log",
        "linked-dir": f"rmdir out && ln -s {shlex.quote(str(other_code))} out",
        "dev-zero": "ln -s /dev/zero out/metrics.log",
        "fifo": "mkfifo out/metrics.log",
        "huge": "echo accuracy=0.3 > out/metrics.log && truncate -s 4G out/metrics.log",
    }
    lines = ["mkdir -p out", 'case "$1" in']
    lines += [f"  --attack={name}) {command} ;;" for name, command in cases.items()]
    return "\n".join([*lines, "esac", "echo laid out"]) + "\n"


def _tuning(path: str, attacks: list[str]) -> bytes:
    return yaml.safe_dump({
        "objective": {"type": "maximize", "objectiveMetricName": "accuracy"},
        "algorithm": {"algorithmName": "grid"}, "parallelTrialCount": len(attacks),
        "maxTrialCount": len(attacks), "maxFailedTrialCount": len(attacks),
        "parameters": [{"name": "attack", "parameterType": "categorical",
                        "feasibleSpace": {"list": attacks}}],
        "metricsCollectorSpec": {"collector": {"kind": "File"},
                                 "source": {"fileSystemPath": {"path": path, "kind": "File"}}},
    }).encode()


def _ended(admin: Client, name: str) -> spb.Study:
    wait_for(lambda: admin.call(admin.studies.GetStudy, spb.GetStudyRequest(name=name)).status in ENDED, 240,
             f"study {name} to end")
    return admin.call(admin.studies.GetStudy, spb.GetStudyRequest(name=name))


def _objectives(admin: Client, study: str) -> dict[str, tuple[str, float | None]]:
    """Each trial's attack → its state and objective value (None when it has none)."""
    trials = admin.call(admin.studies.ListTrials, spb.ListTrialsRequest(study=study, page_size=100)).trials
    return {t.assignment["attack"]: (spb.TrialState.Name(t.state), t.objective if t.has_objective else None)
            for t in trials}


def test_a_trial_cannot_make_the_file_collector_read_outside_its_job_directory(
        admin: Client, loopback_slurm: LoopbackSlurm) -> None:
    cluster = add_loopback_cluster(admin, loopback_slurm, "collectors")
    user = loopback_slurm.ssh_user
    secret = Path(pwd.getpwnam(user).pw_dir) / "collector-secret.log"
    _owned(secret, "accuracy=0.91\n", user)
    other_code = loopback_slurm.work_dir / "runs" / "0therrun" / "code"
    _owned(other_code / "metrics.log", "accuracy=0.92\n", user)
    attacks = ["honest", "home", "other-run", "linked-dir", "dev-zero", "fifo", "huge"]
    admin.call(admin.runs.SubmitRun, pb.SubmitRunRequest(
        run=pb.Run(name="attacks", cluster=cluster, command='sh "$SHIPYARD_CONFIG"',
                   config_file_name="attack.sh"),
        config_file=_attacks(secret, other_code).encode(), tuning=_tuning("/out/metrics.log", attacks)))
    _ended(admin, "attacks")
    found = _objectives(admin, "attacks")
    trials = admin.call(admin.studies.ListTrials, spb.ListTrialsRequest(study="attacks")).trials
    reasons = {t.name: t.status_reason for t in trials}
    assert found == {
        "honest": (SUCCEEDED, 0.5), "huge": (SUCCEEDED, 0.3),  # read up to the limit, from its start
        **{name: (UNAVAILABLE, None) for name in ("home", "other-run", "linked-dir", "dev-zero", "fifo")},
    }, reasons
    # The collector's own path cannot climb out of the trial's working directory either.
    admin.call(admin.runs.SubmitRun, pb.SubmitRunRequest(
        run=pb.Run(name="climbs", cluster=cluster, command='sh "$SHIPYARD_CONFIG"',
                   config_file_name="attack.sh"),
        config_file=_attacks(secret, other_code).encode(),
        tuning=_tuning("/../../0therrun/code/metrics.log", ["honest"])))
    assert _ended(admin, "climbs").status == spb.STUDY_STATUS_FAILED
    assert _objectives(admin, "climbs") == {"honest": (UNAVAILABLE, None)}


def test_a_trial_cannot_make_the_file_collector_read_outside_its_workspace_on_the_local_executor(
        admin: Client, tmp_path: Path) -> None:
    """The local executor reads a trial's files as run-svc (root here), outside the trial's sandbox and while
    the trial runs and may change them: a link the trial made to a host path it cannot see itself must not
    be followed."""
    secret = tmp_path / "platform" / "secret.log"
    secret.parent.mkdir()
    secret.write_text("accuracy=0.91\n")
    other_code = tmp_path / "other"
    other_code.mkdir()
    (other_code / "metrics.log").write_text("accuracy=0.92\n")
    attacks = ["honest", "home", "other-run", "linked-dir", "dev-zero", "fifo", "huge"]
    admin.call(admin.runs.SubmitRun, pb.SubmitRunRequest(
        run=pb.Run(name="local-attacks", command='sh "$SHIPYARD_CONFIG"', config_file_name="attack.sh"),
        config_file=_attacks(secret, other_code).encode(), tuning=_tuning("/out/metrics.log", attacks)))
    _ended(admin, "local-attacks")
    trials = admin.call(admin.studies.ListTrials, spb.ListTrialsRequest(study="local-attacks")).trials
    assert _objectives(admin, "local-attacks") == {
        "honest": (SUCCEEDED, 0.5), "huge": (SUCCEEDED, 0.3),
        **{name: (UNAVAILABLE, None) for name in ("home", "other-run", "linked-dir", "dev-zero", "fifo")},
    }, {t.name: t.status_reason for t in trials}

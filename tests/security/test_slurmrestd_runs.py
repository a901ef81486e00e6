"""Attacks by runs on a Slurm cluster reached through slurmrestd (a real one on loopback, JWT), with the
stack on a real S3 blob store: a run never sees the JWT it was submitted with — not in its environment,
its processes', its batch script nor Slurm's spool — nor the S3 store's secret key, and the presigned
URLs it can find are its own run's; on a cluster where each user signs in, a run goes under its owner's
own Slurm user, and another user can neither use that login nor send runs there without one. A study's File
collector there reads what the trial's job sends of its files: a trial cannot make that anything outside its
working directory (links, another run's files, devices, FIFOs), nor more than the collector's limit."""

from __future__ import annotations

import pwd
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from shipyard.client.connection import Client, ClientError
from shipyard.contracts.repo.v1 import credentials_pb2 as cred
from shipyard.contracts.run.v1 import clusters_pb2 as cpb
from shipyard.contracts.run.v1 import runs_pb2 as pb
from shipyard.contracts.run.v1 import studies_pb2 as spb
from shipyard.kit.cluster_logins import login_credential
from shipyard.local.harness import Stack, wait_for
from shipyard.local.slurm import LoopbackSlurm
from tests.security.test_cluster_collectors import (
    SUCCEEDED,
    UNAVAILABLE,
    _attacks,
    _objectives,
    _owned,
    _tuning,
)
from tests.security.test_cluster_collectors import _ended as _study_ended
from tests.support.seaweed import S3Server, SeaweedS3, blob_url
from tests.support.slurm import OWN_ACCOUNT, add_rest_cluster
from tests.support.users import signed_in

BUCKET = "shipyard-rest-attacks"
ENDED = (pb.RUN_STATUS_COMPLETE, pb.RUN_STATUS_FAILED, pb.RUN_STATUS_STOPPED, pb.RUN_STATUS_ERROR)


@pytest.fixture(scope="module")
def s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    weed = SeaweedS3(tmp_path_factory.mktemp("seaweed"))
    try:
        yield weed.start()
    finally:
        weed.stop()


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, s3: S3Server) -> Iterator[Stack]:
    running = Stack(tmp_path_factory.mktemp("stack") / "data",
                    env={"SHIPYARD_PATH_IMPORT_ROOTS": "", "SHIPYARD_BLOB_URL": blob_url(s3, BUCKET)}).start()
    try:
        yield running
    finally:
        running.stop()


def _logs(client: Client, name: str) -> str:
    return client.call(client.runs.ReadRunLogs, pb.ReadRunLogsRequest(name=name)).data.decode()


def _ended(client: Client, name: str) -> pb.Run:
    wait_for(lambda: client.call(client.runs.GetRun, pb.GetRunRequest(name=name)).status in ENDED, 90,
             f"run {name} to end")
    return client.call(client.runs.GetRun, pb.GetRunRequest(name=name))


def test_a_run_never_sees_the_jwt_nor_the_stores_keys_and_finds_only_its_own_urls(
        stack: Stack, admin: Client, loopback_slurm_rest: LoopbackSlurm, s3: S3Server) -> None:
    jwt = loopback_slurm_rest.token(loopback_slurm_rest.ssh_user)
    cluster = add_rest_cluster(admin, loopback_slurm_rest, "rest-spy", token=jwt)
    spool = loopback_slurm_rest.base / "spool"
    # Everything the run's account can read that could hold what it was submitted with: every process's
    # environment and command line it can see, its own environment, and Slurm's copy of its batch script.
    spy = (f'for p in /proc/[0-9]*; do tr "\\0" "\\n" < "$p/environ"; tr "\\0" " " < "$p/cmdline"; echo; '
           f'done 2>/dev/null; env; find {spool} -type f -exec cat {{}} + 2>/dev/null; echo spied')
    admin.call(admin.runs.SubmitRun, pb.SubmitRunRequest(run=pb.Run(name="spy", command=spy,
                                                                    cluster=cluster)))
    run = _ended(admin, "spy")
    seen = _logs(admin, "spy")
    assert run.status == pb.RUN_STATUS_COMPLETE and "spied" in seen, (run.status_reason, seen[-2000:])
    assert jwt not in seen and jwt.split(".")[2] not in seen  # not even its signature
    assert s3.secret_key not in seen
    for staged_run in re.findall(r"/staging/runs/([0-9a-f]+)/", seen):
        assert staged_run == run.id  # any presigned URL it could find is its own run's


def test_each_users_runs_go_under_their_own_slurm_user_and_no_one_elses(
        stack: Stack, admin: Client, loopback_slurm_rest: LoopbackSlurm, tmp_path: Path) -> None:
    admin.call(admin.clusters.AddCluster, cpb.AddClusterRequest(cluster=cpb.Cluster(
        name="rest-own", kind=cpb.CLUSTER_KIND_SLURM, slurmrestd_url=loopback_slurm_rest.rest_url,
        ssh_user=loopback_slurm_rest.ssh_user, work_dir=str(loopback_slurm_rest.shared_work_dir),
        login_required=True)))
    ana, bob = signed_in(stack, admin, "ana"), signed_in(stack, admin, "bob")
    ana.call(ana.saved_credentials.SaveCredential, cred.SaveCredentialRequest(
        credential=cred.Credential(name=login_credential("rest-own"), type=cred.CREDENTIAL_TYPE_TOKEN,
                                   username=OWN_ACCOUNT), secret=loopback_slurm_rest.token(OWN_ACCOUNT)))
    ana.call(ana.runs.SubmitRun, pb.SubmitRunRequest(run=pb.Run(name="anas", command="id -un",
                                                                cluster="rest-own")))
    run = _ended(ana, "anas")
    assert run.status == pb.RUN_STATUS_COMPLETE, run.status_reason
    assert _logs(ana, "anas").splitlines()[-1] == OWN_ACCOUNT  # her Slurm user, not the cluster's
    with pytest.raises(ClientError) as refused:  # bob has no login there; ana's is never his
        bob.call(bob.runs.SubmitRun, pb.SubmitRunRequest(run=pb.Run(name="bobs", command="id -un",
                                                                    cluster="rest-own")))
    assert (refused.value.code, refused.value.field) == ("FAILED_PRECONDITION", "run.cluster")
    assert "--token-file" in refused.value.message
    # A token of another Slurm user's, under bob's own name, is refused by Slurm: the run errs, no job.
    bob.call(bob.saved_credentials.SaveCredential, cred.SaveCredentialRequest(
        credential=cred.Credential(name=login_credential("rest-own"), type=cred.CREDENTIAL_TYPE_TOKEN,
                                   username=loopback_slurm_rest.ssh_user),
        secret=loopback_slurm_rest.token(OWN_ACCOUNT)))
    bob.call(bob.runs.SubmitRun, pb.SubmitRunRequest(run=pb.Run(name="bobs", command="id -un",
                                                                cluster="rest-own")))
    run = _ended(bob, "bobs")
    assert run.status == pb.RUN_STATUS_ERROR and "a JWT it cannot use" in run.status_reason, run.status_reason


def test_a_trial_cannot_make_what_its_job_sends_for_the_file_collector_anything_outside_its_directory(
        stack: Stack, admin: Client, loopback_slurm_rest: LoopbackSlurm) -> None:
    cluster = add_rest_cluster(admin, loopback_slurm_rest, "rest-collectors")
    user = loopback_slurm_rest.ssh_user
    secret = Path(pwd.getpwnam(user).pw_dir) / "rest-collector-secret.log"
    _owned(secret, "accuracy=0.91\n", user)
    other_code = loopback_slurm_rest.work_dir / "runs" / "0therrun" / "code"
    _owned(other_code / "metrics.log", "accuracy=0.92\n", user)
    attacks = ["honest", "home", "other-run", "linked-dir", "dev-zero", "fifo", "huge"]
    admin.call(admin.runs.SubmitRun, pb.SubmitRunRequest(
        run=pb.Run(name="rest-attacks", cluster=cluster, command='sh "$SHIPYARD_CONFIG"',
                   config_file_name="attack.sh"),
        config_file=_attacks(secret, other_code).encode(), tuning=_tuning("/out/metrics.log", attacks)))
    _study_ended(admin, "rest-attacks")
    trials = admin.call(admin.studies.ListTrials, spb.ListTrialsRequest(study="rest-attacks")).trials
    assert _objectives(admin, "rest-attacks") == {
        "honest": (SUCCEEDED, 0.5), "huge": (SUCCEEDED, 0.3),  # sent up to the limit, from its start
        **{name: (UNAVAILABLE, None) for name in ("home", "other-run", "linked-dir", "dev-zero", "fifo")},
    }, {t.name: t.status_reason for t in trials}

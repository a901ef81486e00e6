"""Attacks by runs on a Slurm cluster (a real one on loopback) where every run goes under the
cluster's one service account: a run cannot read another run's job directory, nor the account's home
(its keys), nor anything of the platform's (its variables, its data directory); its outputs cannot
bring a file of the platform's home, nor hold run-svc up with files it cannot fetch; and a user cannot
send runs under another user's cluster login."""

from __future__ import annotations

import contextlib

import asyncssh
import pytest

from shipyard.client.connection import Client, ClientError
from shipyard.contracts.repo.v1 import credentials_pb2 as cred
from shipyard.contracts.repo.v1 import repos_pb2
from shipyard.contracts.run.v1 import runs_pb2 as pb
from shipyard.kit.cluster_logins import login_credential
from shipyard.local.harness import Stack, wait_for
from shipyard.local.slurm import LoopbackSlurm
from tests.support.slurm import OWN_ACCOUNT, add_loopback_cluster
from tests.support.users import signed_in

ENDED = (pb.RUN_STATUS_COMPLETE, pb.RUN_STATUS_FAILED, pb.RUN_STATUS_STOPPED, pb.RUN_STATUS_ERROR)


def _logs(client: Client, name: str) -> str:
    return client.call(client.runs.ReadRunLogs, pb.ReadRunLogsRequest(name=name)).data.decode()


def _ended(client: Client, name: str) -> pb.Run:
    wait_for(lambda: client.call(client.runs.GetRun, pb.GetRunRequest(name=name)).status in ENDED, 90,
             f"run {name} to end")
    return client.call(client.runs.GetRun, pb.GetRunRequest(name=name))


def test_a_run_cannot_read_another_runs_files_the_accounts_home_or_the_platform(
        stack: Stack, admin: Client, loopback_slurm: LoopbackSlurm) -> None:
    cluster = add_loopback_cluster(admin, loopback_slurm, "shared")
    ana, mallory = signed_in(stack, admin, "ana"), signed_in(stack, admin, "mallory")
    ana.call(ana.runs.SubmitRun, pb.SubmitRunRequest(run=pb.Run(
        name="victim", cluster=cluster, hyperparameters={"secret": "ana-s3cret"},
        command='echo "$secret" > "$SHIPYARD_OUTPUT/weights"; cp "$SHIPYARD_HYPERPARAMS" .; echo ready; '
                "sleep 60")))
    wait_for(lambda: "ready" in _logs(ana, "victim"), 60, "the victim's job to run")
    victim = ana.call(ana.runs.GetRun, pb.GetRunRequest(name="victim"))
    runs_dir = loopback_slurm.work_dir / "runs"
    home = f"/home/{loopback_slurm.ssh_user}"
    mallory.call(mallory.runs.SubmitRun, pb.SubmitRunRequest(run=pb.Run(
        name="thief", cluster=cluster, command=(
            f"echo listed: $(ls {runs_dir}); "
        f"cat {runs_dir}/{victim.id}/output/weights {runs_dir}/{victim.id}/code/hyperparameters.json; "
        f"echo home: $(ls -a {home}); "
        f"echo platform: $(ls {stack.data_dir} 2>&1); "
        "echo env: $(env | grep -ci -e nats -e secret_key -e s3_); true"))))
    thief = _ended(mallory, "thief")
    log = _logs(mallory, "thief")
    assert thief.status == pb.RUN_STATUS_COMPLETE, log
    assert f"listed: {thief.id}\n" in log  # only its own job directory
    assert "ana-s3cret" not in log, log
    assert "home: . ..\n" in log  # the account's home is an empty tmpfs
    assert "platform: \n" in log or "Permission denied" in log or "No such file" in log
    assert "env: 0\n" in log
    ana.call(ana.runs.StopRun, pb.StopRunRequest(name="victim"))
    assert _ended(ana, "victim").status == pb.RUN_STATUS_STOPPED


def test_a_user_cannot_run_under_another_users_cluster_login(
        stack: Stack, admin: Client, loopback_slurm: LoopbackSlurm) -> None:
    cluster = add_loopback_cluster(admin, loopback_slurm, "own-logins", login_required=True,
                                   work_dir=str(loopback_slurm.shared_work_dir))
    eve = signed_in(stack, admin, "eve")
    eves = pb.SubmitRunRequest(run=pb.Run(name="eves", cluster=cluster, command="id"))
    with pytest.raises(ClientError) as refused:
        eve.call(eve.runs.SubmitRun, eves)
    assert refused.value.code == "FAILED_PRECONDITION"
    assert "shipyard cluster login own-logins" in refused.value.message
    # Eve claims Ana's account there with a key of her own: the cluster's sshd refuses it; nothing runs.
    eve.call(eve.saved_credentials.SaveCredential, cred.SaveCredentialRequest(
        credential=cred.Credential(name=login_credential(cluster), type=cred.CREDENTIAL_TYPE_SSH_KEY,
                                   host=loopback_slurm.host, username=OWN_ACCOUNT),
        secret=_new_key()))
    eve.call(eve.runs.SubmitRun, eves)
    run = _ended(eve, "eves")
    assert run.status == pb.RUN_STATUS_ERROR and "refused the key" in run.status_reason


def _new_key() -> str:
    return asyncssh.generate_private_key("ssh-ed25519").export_private_key().decode()


@pytest.mark.parametrize(("name", "trick"), [
    # A link to run-svc's own admin token: copied as a link, it points outside the fetched outputs.
    ("linker", 'ln -s {token} "$SHIPYARD_OUTPUT/token"'),
    # A file SFTP cannot read: the run ends saying so, instead of being fetched again at every tick.
    ("unreadable", 'echo w > "$SHIPYARD_OUTPUT/weights"; chmod 000 "$SHIPYARD_OUTPUT/weights"'),
])
def test_a_runs_outputs_bring_nothing_of_the_platforms_and_an_unfetchable_one_ends_the_run(
        stack: Stack, admin: Client, loopback_slurm: LoopbackSlurm, name: str, trick: str) -> None:
    cluster = add_loopback_cluster(admin, loopback_slurm, f"outputs-{name}")
    model = repos_pb2.Repo(kind=repos_pb2.REPO_KIND_MODEL, name="loot", versioning=repos_pb2.VERSIONING_DVS,
                           source=repos_pb2.Source(none=repos_pb2.NoSource()))
    with contextlib.suppress(ClientError):  # made by the other case
        admin.call(admin.repos.CreateRepo, repos_pb2.CreateRepoRequest(repo=model))
    loot = repos_pb2.GetRepoRequest(kind=repos_pb2.REPO_KIND_MODEL, name="loot")
    before = admin.call(admin.repos.GetRepo, loot).latest_version
    admin.call(admin.runs.SubmitRun, pb.SubmitRunRequest(run=pb.Run(
        name=name, cluster=cluster, command=trick.format(token=stack.data.admin_token),
        outputs=[pb.RunOutputTarget(repo_kind="model", repo="loot")])))
    run = _ended(admin, name)
    assert run.status == pb.RUN_STATUS_ERROR, run.status_reason
    assert "outputs could not be stored" in run.status_reason, run.status_reason
    assert admin.call(admin.repos.GetRepo, loot).latest_version == before  # no version made of it

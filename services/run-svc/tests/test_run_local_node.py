"""Clusters whose login node run-svc runs on (on_login_node): what may be given is checked at add naming
the field, and the node's commands and files are the local account's — run-svc, as root here, switches
to that account (``nobody``) for each, as sshd would, and never runs a job's command as root."""

from __future__ import annotations

import asyncio
import os
import pwd
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from run_fakes import fake_world
from shipyard_run.adapters.batch_jobs import BatchExecutor
from shipyard_run.adapters.clusters import RemoteClusters
from shipyard_run.adapters.local_node import LocalNode, _finished, account_refusal
from shipyard_run.adapters.login_node import CommandFailed, TransferFailed
from shipyard_run.domain.clusters import Cluster, ClusterKind
from shipyard_run.entrypoints.clusters_api import cluster_from_proto, cluster_to_proto

from shipyard.contracts.run.v1 import clusters_pb2 as pb
from shipyard.kit.blob.local import LocalBlobStore
from shipyard.kit.errors import FailedPrecondition, InvalidArgument
from shipyard.kit.testing import OPERATOR_CALLER
from shipyard.kit.testing.credentials import FakeCredentialClient

ACCOUNT = "nobody"  # an unprivileged account every Debian has
as_root = pytest.mark.skipif(os.geteuid() != 0, reason="switching to another account needs root")


def on_node(**changes: object) -> Cluster:
    fields: dict[str, object] = {"ssh_user": "svc", "work_dir": "/scratch/shipyard", "partition": "gpu",
                                 "on_login_node": True, **changes}
    return Cluster("hpc", ClusterKind.SLURM, **fields)  # type: ignore[arg-type]


async def test_a_cluster_on_its_login_node_is_added_without_ssh_and_kept() -> None:
    world = await fake_world()
    added = await world.service.clusters.add(OPERATOR_CALLER, on_node())
    assert (added.on_login_node, added.ssh_port, added.host) == (True, 0, "")
    kept = await world.service.clusters.get("hpc")
    assert (kept.on_login_node, kept.ssh_user, kept.ssh_port) == (True, "svc", 0)
    shown = cluster_to_proto(kept)
    assert (shown.on_login_node, shown.ssh_port, shown.host) == (True, 0, "")
    assert cluster_from_proto(pb.Cluster(name="x", kind=pb.CLUSTER_KIND_LSF, on_login_node=True,
                                         ssh_user="svc", work_dir="/w")).checked().on_login_node


@pytest.mark.parametrize(("cluster", "field", "says"), [
    (on_node(host="login.example"), "cluster.host", "with no SSH"),
    (on_node(ssh_port=2222), "cluster.ssh_port", "with no SSH"),
    (on_node(credential="hpc-key"), "cluster.credential", "with no SSH"),
    (on_node(ssh_host_key="ssh-ed25519 AAAAC3Nz"), "cluster.ssh_host_key", "with no SSH"),
    (on_node(ssh_user=""), "cluster.ssh_user", "local account jobs run as is required"),
    (on_node(ssh_user="root"), "cluster.ssh_user", "must not run as root"),
    (on_node(login_required=True), "cluster.login_required", "cannot put each user's jobs"),
    (on_node(work_dir=""), "cluster.work_dir", "staged"),
    (on_node(slurmrestd_url="https://slurm.example:6820"), "cluster.slurmrestd_url", "not both"),
    (Cluster("k", ClusterKind.KUBERNETES, kubeconfig_credential="k", on_login_node=True),
     "cluster.on_login_node", "for slurm and lsf"),
])
async def test_what_a_cluster_on_its_login_node_cannot_have_is_refused_naming_the_field(
        cluster: Cluster, field: str, says: str) -> None:
    world = await fake_world()
    with pytest.raises(InvalidArgument) as refused:
        await world.service.clusters.add(OPERATOR_CALLER, cluster)
    assert refused.value.field == field and says in str(refused.value)
    assert await world.service.clusters.list() == []


async def test_a_cluster_whose_account_is_root_is_refused_runs(tmp_path: Path) -> None:
    clusters = RemoteClusters(tmp_path, LocalBlobStore(tmp_path / "blobs"), FakeCredentialClient(), _no_pin)
    # The record as if it had been stored before the check at add (or the account became uid 0 since).
    assert "jobs must not run as root" in clusters.unsupported(on_node(ssh_user="root"))
    assert "no local account 'no-such-account'" in clusters.unsupported(on_node(ssh_user="no-such-account"))
    with pytest.raises(FailedPrecondition) as refused:
        await LocalNode("root").run("id")
    assert refused.value.field == "cluster.ssh_user"


@as_root
async def test_the_cluster_executor_submits_on_this_node_as_its_account(tmp_path: Path) -> None:
    clusters = RemoteClusters(tmp_path, LocalBlobStore(tmp_path / "blobs"), FakeCredentialClient(), _no_pin)
    assert clusters.unsupported(on_node(ssh_user=ACCOUNT)) == ""
    executor = clusters.open(on_node(ssh_user=ACCOUNT))
    assert isinstance(executor, BatchExecutor)
    node = executor._nodes("")  # which node the runs go through
    assert isinstance(node, LocalNode) and await node.run("id -un") == f"{ACCOUNT}\n"


def test_run_svc_not_root_runs_only_as_itself(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 4242)
    assert "so it can run commands only as that account, not as 'nobody'" in account_refusal(ACCOUNT)


# --- the node's commands and files, as the account -----------------------------------------------------


@pytest.fixture
def account_dir() -> Iterator[Path]:
    """A directory of the account's own (pytest's base is root's alone, mode 700: not under it)."""
    made = Path(tempfile.mkdtemp(prefix="shipyard-local-node-"))
    made.chmod(0o755)
    own = made / "work"
    own.mkdir()
    _own(own)
    yield own
    shutil.rmtree(made)


@as_root
async def test_commands_run_as_the_account_with_a_logins_variables_and_the_schedulers(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SLURM_CONF", "/etc/slurm/test.conf")
    monkeypatch.setenv("SHIPYARD_S3_SECRET_KEY", "platform-secret")
    node = LocalNode(ACCOUNT)
    assert await node.run("id -un; id -u") == f"{ACCOUNT}\n65534\n"
    env = dict(line.split("=", 1) for line in (await node.run("env")).splitlines() if "=" in line)
    assert env["SLURM_CONF"] == "/etc/slurm/test.conf"
    assert (env["USER"], env["LOGNAME"], env["HOME"]) == (ACCOUNT, ACCOUNT, "/nonexistent")
    assert env["PATH"].startswith("/usr/local/bin:/usr/bin:/bin")
    assert "platform-secret" not in str(env) and not any(k.startswith("SHIPYARD") for k in env)
    assert await node.run("cat /proc/self/status | grep CapEff") == "CapEff:\t0000000000000000\n"
    assert await node.run("cat", stdin=b"given") == "given"
    with pytest.raises(CommandFailed) as failed:
        await node.run("echo broke >&2; exit 3")
    assert failed.value.code == 3 and "broke" in failed.value.stderr
    hung = await node._spawn("sleep 600 & wait", asyncio.subprocess.DEVNULL, asyncio.subprocess.PIPE)
    with pytest.raises(CommandFailed, match="timed out"):  # killed, its session with it
        await _finished(hung, "sleep", limit_s=0.1)
    assert hung.returncode == -9


@as_root
async def test_files_go_in_and_out_as_the_account(account_dir: Path, tmp_path: Path) -> None:
    node = LocalNode(ACCOUNT)
    stage = tmp_path / "stage"
    (stage / "code").mkdir(parents=True)
    (stage / "code" / "train.py").write_text("print(1)")
    (stage / "run.sh").write_text("#!/bin/sh\n")
    (stage / "run.sh").chmod(0o700)
    remote = account_dir / "runs" / "r1"
    (account_dir / "runs").mkdir()
    _own(account_dir / "runs")
    await node.put_tree(stage, str(remote))
    for path in (remote, remote / "code", remote / "code" / "train.py", remote / "run.sh"):
        assert path.stat().st_uid == 65534, path
    assert (remote / "run.sh").stat().st_mode & 0o777 == 0o700
    with pytest.raises(TransferFailed):  # it must not exist yet
        await node.put_tree(stage, str(remote))
    with pytest.raises(TransferFailed, match="Permission denied"):  # nowhere the account may not write
        await node.put_tree(stage, str(tmp_path / "elsewhere"))

    await node.run(f"mkdir {remote}/output && echo weights > {remote}/output/model.txt && "
                   f"ln -s model.txt {remote}/output/link.txt")
    fetched = tmp_path / "fetched"
    await node.get_tree(f"{remote}/output", fetched)
    assert (fetched / "model.txt").read_text() == "weights\n"
    assert (fetched / "link.txt").read_text() == "weights\n" and not (fetched / "link.txt").is_symlink()

    assert await node.get_file(f"{remote}/output/model.txt", tmp_path / "log")
    assert (tmp_path / "log").read_text() == "weights\n"
    assert not await node.get_file(f"{remote}/output/missing", tmp_path / "missing")
    assert not (tmp_path / "missing").exists()
    assert await node.read(f"{remote}/output/model.txt", 2, 3) == b"igh"
    assert await node.read(f"{remote}/output/missing", 0, 10) == b""
    assert await node.exists(f"{remote}/run.sh") and not await node.exists(f"{remote}/nothing")


@as_root
async def test_the_account_cannot_make_run_svc_read_what_it_cannot(account_dir: Path, tmp_path: Path) -> None:
    secret = account_dir.parent / "root-only"
    secret.write_text("platform secret")
    secret.chmod(0o600)
    node = LocalNode(ACCOUNT)
    outputs = account_dir / "output"
    await node.run(f"mkdir {outputs} && ln -s {secret} {outputs}/stolen && ln -s {secret} {account_dir}/log")
    with pytest.raises(TransferFailed, match="Permission denied"):  # links are followed as the account
        await node.get_tree(str(outputs), tmp_path / "fetched")
    assert "platform secret" not in "".join(p.read_text() for p in (tmp_path / "fetched").rglob("*")
                                            if p.is_file())
    with pytest.raises(TransferFailed, match="Permission denied"):
        await node.get_file(f"{account_dir}/log", tmp_path / "log")
    with pytest.raises(OSError):  # a link at the end is not followed
        await node.read(f"{account_dir}/log", 0, 100)
    with pytest.raises(PermissionError, match="not a regular file of the cluster's account"):
        await node.read(str(secret), 0, 100)
    hidden = tmp_path / "hidden"  # under pytest's base, root's alone
    hidden.write_text("")
    assert not await node.exists(str(hidden))  # as the account sees it


def _own(path: Path) -> None:
    entry = pwd.getpwnam(ACCOUNT)
    os.chown(path, entry.pw_uid, entry.pw_gid)


async def _no_pin(cluster: str, key: str) -> None:
    raise AssertionError("a cluster on its login node has no host key")

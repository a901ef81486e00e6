"""The ``loopback_slurm`` fixture: one real single-node Slurm cluster and sshd on loopback per test session
(shipyard.local.slurm.LoopbackSlurm), for the Slurm executor's tests. Needs root and Debian's Slurm,
munge and OpenSSH server (tools/install-test-deps.sh)."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from shipyard.client.connection import Client
from shipyard.contracts.repo.v1 import credentials_pb2 as cred
from shipyard.contracts.run.v1 import clusters_pb2 as cpb
from shipyard.local.slurm import LoopbackSlurm

OWN_ACCOUNT = "shipyard-ana"  # a person's own account on the cluster (shipyard cluster login)


@pytest.fixture(scope="session")
def loopback_slurm() -> Iterator[LoopbackSlurm]:
    """A started cluster (with a second user, OWN_ACCOUNT, and her own key), stopped (every job
    cancelled) after the session. Its base is a fresh directory
    under /tmp, not pytest's tmp_path: pytest's base (mode 700) would keep the job user out. The base is
    removed after a clean stop, and kept, logs and all, when starting or stopping fails."""
    base = Path(tempfile.mkdtemp(prefix="shipyard-slurm-"))
    cluster = LoopbackSlurm(base, other_users=(OWN_ACCOUNT,)).start()
    try:
        yield cluster
    finally:
        cluster.stop()
    shutil.rmtree(base)


@pytest.fixture(scope="session")
def loopback_slurm_rest() -> Iterator[LoopbackSlurm]:
    """A started cluster with slurmrestd on loopback (JWT), as ``loopback_slurm`` but its own: the
    slurmrestd executor's tests. Needs Debian's slurmrestd and JWT plugin (tools/install-test-deps.sh)."""
    base = Path(tempfile.mkdtemp(prefix="shipyard-slurmrestd-"))
    cluster = LoopbackSlurm(base, other_users=(OWN_ACCOUNT,), rest=True).start()
    try:
        yield cluster
    finally:
        cluster.stop()
    shutil.rmtree(base)


def add_rest_cluster(admin: Client, slurm: LoopbackSlurm, name: str = "rest", token: str = "",
                     **fields: object) -> str:
    """The loopback Slurm's slurmrestd added by ``admin`` as cluster ``name``, submitting as its SSH user
    with the JWT (``token``, else a fresh one) ``admin`` stores as token credential ``<name>-jwt``;
    ``fields`` set more of the cluster's."""
    admin.call(admin.saved_credentials.SaveCredential, cred.SaveCredentialRequest(
        credential=cred.Credential(name=f"{name}-jwt", type=cred.CREDENTIAL_TYPE_TOKEN,
                                   username=slurm.ssh_user), secret=token or slurm.token(slurm.ssh_user)))
    settings: dict[str, object] = {"work_dir": str(slurm.work_dir), "partition": slurm.partition, **fields}
    admin.call(admin.clusters.AddCluster, cpb.AddClusterRequest(cluster=cpb.Cluster(
        name=name, kind=cpb.CLUSTER_KIND_SLURM, slurmrestd_url=slurm.rest_url, ssh_user=slurm.ssh_user,
        credential=f"{name}-jwt", **settings)))  # type: ignore[arg-type]
    return name


def add_loopback_cluster(admin: Client, slurm: LoopbackSlurm, name: str = "hpc", **fields: object) -> str:
    """The loopback Slurm added by ``admin`` as cluster ``name``, signing in with the key ``admin`` stores
    as credential ``<name>-key`` (the host key left out: the first connection pins it); ``fields`` set
    more of the cluster's (gpus, login_required, work_dir …)."""
    admin.call(admin.saved_credentials.SaveCredential, cred.SaveCredentialRequest(
        credential=cred.Credential(name=f"{name}-key", type=cred.CREDENTIAL_TYPE_SSH_KEY, host=slurm.host,
                                   username=slurm.ssh_user), secret=slurm.private_key))
    settings: dict[str, object] = {"work_dir": str(slurm.work_dir), "partition": slurm.partition, **fields}
    admin.call(admin.clusters.AddCluster, cpb.AddClusterRequest(cluster=cpb.Cluster(
        name=name, kind=cpb.CLUSTER_KIND_SLURM, host=slurm.host, ssh_port=slurm.ssh_port,
        ssh_user=slurm.ssh_user, credential=f"{name}-key", **settings)))  # type: ignore[arg-type]
    return name

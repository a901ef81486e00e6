"""Opens the executors of clusters reached over SSH (Slurm so far): each signs in to the cluster's
login node as its SSH user, with the key the operator who added the cluster stored as a credential
(repo-svc lends it to run-svc alone), and checks the login node's host key; or, where run-svc runs on
the login node itself, runs the commands there as the cluster's local account (local_node). Kubernetes
clusters are reached with the kubeconfig the operator stored as a credential, their pods fed through the
S3 blob store."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from shipyard.kit.blob.port import BlobStore
from shipyard.kit.blob.s3 import S3BlobStore
from shipyard.kit.caller import Caller
from shipyard.kit.clients.credentials import OpenedSecret
from shipyard.kit.cluster_logins import login_credential
from shipyard.kit.errors import FailedPrecondition, NotFound
from shipyard_run.adapters.batch_jobs import BatchExecutor, BatchScheduler
from shipyard_run.adapters.environments import PackageSources
from shipyard_run.adapters.local_node import LocalNode, account_refusal
from shipyard_run.adapters.login_node import LoginNode, SshAccount
from shipyard_run.adapters.lsf import LsfScheduler
from shipyard_run.adapters.slurm import SlurmScheduler
from shipyard_run.adapters.slurm_rest import SlurmRestExecutor
from shipyard_run.adapters.slurmrestd import RestLogin, SlurmRest
from shipyard_run.app.ports import Executor
from shipyard_run.domain.clusters import Cluster, ClusterKind

SSH_KEY = "ssh-key"
TOKEN = "token"  # a slurmrestd cluster's JWT
SCHEDULERS: dict[ClusterKind, Callable[[], BatchScheduler]] = {ClusterKind.SLURM: SlurmScheduler,
                                                               ClusterKind.LSF: LsfScheduler}


class CredentialOpener(Protocol):
    """repo-svc's stored credentials, opened (the kit's CredentialClient)."""

    async def open(self, caller: Caller, owner: str, name: str) -> OpenedSecret:
        """``owner``'s credential ``name`` with its secret."""


HostKeyPin = Callable[[str, str], Awaitable[None]]
"""Keeps the host key a cluster's first connection saw: (cluster name, public key)."""


@dataclass
class RemoteClusters:
    """The ClusterExecutors port: Slurm and LSF clusters reached over SSH, and Kubernetes clusters."""

    root: Path  # run-svc's own directory for clusters' runs (one folder per cluster)
    blobs: BlobStore
    credentials: CredentialOpener
    pin: HostKeyPin
    packages: PackageSources | None = None

    def unsupported(self, cluster: Cluster) -> str:
        if cluster.kind is ClusterKind.KUBERNETES:
            return self._kubernetes_unsupported()
        if cluster.slurmrestd_url:
            return self._s3_missing("a job submitted through slurmrestd")
        if cluster.kind in SCHEDULERS and cluster.on_login_node:
            return account_refusal(cluster.ssh_user)  # e.g. root (uid 0) under another name
        if cluster.kind in SCHEDULERS:
            return ""
        return f"runs are not sent to {cluster.kind.value} clusters yet (Slurm and LSF clusters take them)"

    async def missing_login(self, cluster: Cluster, user: str) -> str:
        if not cluster.login_required:
            return ""
        try:
            await self._login(cluster, user)
        except FailedPrecondition as exc:
            return exc.message
        return ""

    def open(self, cluster: Cluster) -> Executor:
        if cluster.kind is ClusterKind.KUBERNETES:
            return self._kubernetes(cluster)
        if cluster.slurmrestd_url:
            return self._slurmrestd(cluster)
        scheduler = SCHEDULERS[cluster.kind]()
        if cluster.on_login_node:  # no login required there (refused at add): every run is the account's
            local = LocalNode(cluster.ssh_user)
            return BatchExecutor(cluster, scheduler, lambda _owner: local, self.blobs,
                                 self.root / cluster.name, self.packages)
        nodes: dict[str, LoginNode] = {}

        def node_of(owner: str) -> LoginNode:
            if owner not in nodes:
                nodes[owner] = LoginNode(self._account(cluster, owner), self._pin(cluster.name), key=owner)
            return nodes[owner]

        return BatchExecutor(cluster, scheduler, node_of, self.blobs, self.root / cluster.name, self.packages)

    def _kubernetes_unsupported(self) -> str:
        return self._s3_missing("a Kubernetes cluster's pods")

    def _s3_missing(self, who: str) -> str:
        if isinstance(self.blobs, S3BlobStore):
            return ""
        return (f"{who} fetch their inputs and send their outputs through the S3 blob store, and run-svc's "
                "blob store is local files (SHIPYARD_BLOB_URL s3://…)")

    def _slurmrestd(self, cluster: Cluster) -> Executor:
        if refusal := self._s3_missing("a job submitted through slurmrestd"):
            raise FailedPrecondition(f"cluster {cluster.name!r}: {refusal}")
        assert isinstance(self.blobs, S3BlobStore)

        async def login_of(owner: str) -> RestLogin:  # read again as the executor asks: a token may change
            if owner:
                opened = await self._login(cluster, owner)
                return RestLogin(opened.username or owner, opened.secret.strip())
            opened = await self._operator_credential(cluster, cluster.credential)
            _check_type(cluster, opened, TOKEN)
            return RestLogin(cluster.ssh_user, opened.secret.strip())

        return SlurmRestExecutor(cluster, SlurmRest(cluster.slurmrestd_url), login_of, self.blobs, self.blobs,
                                 self.root / cluster.name, self.packages)

    def _kubernetes(self, cluster: Cluster) -> Executor:
        if refusal := self._kubernetes_unsupported():
            raise FailedPrecondition(f"cluster {cluster.name!r}: {refusal}")
        assert isinstance(self.blobs, S3BlobStore)
        # Imported here: the kubernetes client is slow to import, and most run-svcs never open such a cluster.
        from shipyard_run.adapters.kubernetes import KubernetesExecutor

        async def kubeconfig() -> str:  # read when run-svc connects: the operator may replace it
            return (await self._operator_credential(cluster, cluster.kubeconfig_credential)).secret

        return KubernetesExecutor(cluster, kubeconfig, self.blobs, self.blobs, self.root / cluster.name)

    async def _operator_credential(self, cluster: Cluster, name: str) -> OpenedSecret:
        """The cluster operator's credential ``name``, with its secret; FailedPrecondition when it is gone."""
        try:
            opened = await self.credentials.open(Caller(cluster.owner, frozenset()), cluster.owner, name)
        except NotFound as exc:
            raise FailedPrecondition(f"cluster {cluster.name!r} signs in with credential {name!r} of "
                                     f"{cluster.owner}, which is gone: {exc.message}") from exc
        return opened

    def _account(self, cluster: Cluster, owner: str) -> Callable[[], Awaitable[SshAccount]]:
        async def account() -> SshAccount:  # read at each connection: a key may be replaced meanwhile
            if owner:
                login = await self._login(cluster, owner)
                return SshAccount(cluster.host, cluster.ssh_port, login.username or owner, login.secret,
                                  cluster.ssh_host_key)
            key = await self._operator_key(cluster) if cluster.credential else ""
            return SshAccount(cluster.host, cluster.ssh_port, cluster.ssh_user, key, cluster.ssh_host_key)

        return account

    def _pin(self, name: str) -> Callable[[str], Awaitable[None]]:
        async def pin(public_key: str) -> None:
            await self.pin(name, public_key)

        return pin

    async def _operator_key(self, cluster: Cluster) -> str:
        """The SSH key the cluster's operator stored; FailedPrecondition naming what is wrong."""
        opened = await self._operator_credential(cluster, cluster.credential)
        _check_type(cluster, opened, SSH_KEY)
        return opened.secret

    async def _login(self, cluster: Cluster, user: str) -> OpenedSecret:
        """The user's own login to the cluster; FailedPrecondition saying how to give it."""
        name = login_credential(cluster.name)
        try:
            opened = await self.credentials.open(Caller(user, frozenset()), user, name)
        except NotFound:
            secret = "--token-file <your JWT>" if cluster.slurmrestd_url else "--key-file <your SSH key>"
            raise FailedPrecondition(f"cluster {cluster.name!r} runs each user's jobs under their own "
                                     f"account, and {user} has not signed in to it: shipyard cluster login "
                                     f"{cluster.name} --user <your user there> {secret}") from None
        _check_type(cluster, opened, TOKEN if cluster.slurmrestd_url else SSH_KEY)
        return opened


def _check_type(cluster: Cluster, opened: OpenedSecret, wanted: str) -> None:
    if opened.type != wanted:
        raise FailedPrecondition(f"cluster {cluster.name!r} signs in with credential {opened.name!r}, "
                                 f"whose type is {opened.type}, not {wanted}")

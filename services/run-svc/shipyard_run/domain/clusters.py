"""Clusters: the schedulers beside the local machine that runs may target (Slurm, Kubernetes, LSF).

An operator adds them; everyone sees them. What each kind needs to be reached is checked here, so a
cluster that could never take a run is refused when it is added, naming the field.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from enum import Enum
from typing import Any
from urllib.parse import urlsplit

from shipyard.kit.errors import FailedPrecondition, InvalidArgument
from shipyard.kit.rules import check_abs_path, check_name, check_text
from shipyard_run.domain.runs import RunSpec

LOCAL = "local"  # the platform's own machine: no record, always there
APPTAINER = "apptainer"
PYXIS = "pyxis"
GPUS_MAX = 1024
WORKERS_MAX = 1024
URL_MAX = 2000
SSH_PORT = 22
ROOT = "root"
_HOST = re.compile(r"[A-Za-z0-9]([A-Za-z0-9.-]{0,252}[A-Za-z0-9])?")
_USER = re.compile(r"[a-z_][a-z0-9_.-]{0,31}")
_HOST_KEY = re.compile(
    r"(ssh-(ed25519|rsa|dss)|ecdsa-sha2-nistp(256|384|521)|sk-[a-z0-9@.-]+) [A-Za-z0-9+/]+=*( \S.*)?"
)
_K8S_NAME = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?")


class ClusterKind(Enum):
    """The schedulers Shipyard speaks to."""

    SLURM = "slurm"
    KUBERNETES = "kubernetes"
    LSF = "lsf"

    @property
    def over_ssh(self) -> bool:
        """Whether runs reach it through a login node over SSH."""
        return self in (ClusterKind.SLURM, ClusterKind.LSF)


# The container runtimes a cluster of each kind may declare ("": none).
CONTAINER_RUNTIMES = {ClusterKind.SLURM: ("", APPTAINER, PYXIS), ClusterKind.LSF: ("", APPTAINER),
                      ClusterKind.KUBERNETES: ("",)}

@dataclass(frozen=True)
class Cluster:
    """A cluster as an operator described it."""

    name: str
    kind: ClusterKind
    owner: str = ""
    create_time: datetime | None = None
    description: str = ""
    host: str = ""
    ssh_port: int = 22
    ssh_user: str = ""
    credential: str = ""
    partition: str = ""
    queue: str = ""
    work_dir: str = ""
    namespace: str = ""
    kubeconfig_credential: str = ""
    login_required: bool = False
    gpus: int = 0
    max_workers: int = 0
    ssh_host_key: str = ""  # "ssh-ed25519 AAAA…"; "" until the first connection pins it
    container_runtime: str = ""  # "apptainer", "pyxis" (Slurm) or "": none
    service_account: str = ""  # Kubernetes: the ServiceAccount KServe's model servers run as
    on_login_node: bool = False  # Slurm, LSF: run-svc runs on the login node and submits there as ssh_user
    slurmrestd_url: str = ""  # Slurm: submit through slurmrestd here (a JWT), files through the S3 blob store
    revision: int = 0

    @property
    def id(self) -> str:
        """Its key in the store: clusters are named once."""
        return self.name

    def checked(self) -> Cluster:
        """This cluster, or InvalidArgument naming the first field that cannot work."""
        check_name("cluster.name", self.name)
        if self.name == LOCAL:
            raise InvalidArgument(
                "cluster.name", "'local' is the platform's own machine; choose another name"
            )
        check_text("cluster.description", self.description, 2000)
        if not 0 <= self.gpus <= GPUS_MAX:
            raise InvalidArgument("cluster.gpus", f"must be 0 to {GPUS_MAX} (got {self.gpus})")
        if not 0 <= self.max_workers <= WORKERS_MAX:
            raise InvalidArgument(
                "cluster.max_workers", f"must be 0 to {WORKERS_MAX} (got {self.max_workers})"
            )
        if self.on_login_node:
            self._check_on_login_node()
        if self.slurmrestd_url:
            self._check_slurmrestd()
        return self._checked_ssh() if self.kind.over_ssh else self._checked_kubernetes()

    def _check_on_login_node(self) -> None:
        """run-svc on the login node itself submits there with no SSH, each command as the local account
        ``ssh_user``: nothing of SSH's may be given, and the account is never root."""
        kind = self.kind.value
        if not self.kind.over_ssh:
            raise InvalidArgument("cluster.on_login_node", f"submitting on the login node itself is for "
                                                           f"slurm and lsf clusters, not a {kind} cluster")
        for field_name, value in (("cluster.host", self.host), ("cluster.credential", self.credential),
                                  ("cluster.ssh_host_key", self.ssh_host_key)):
            if value:
                raise InvalidArgument(field_name, "run-svc submits on the login node it runs on, with no "
                                                  "SSH: leave it out")
        if self.ssh_port not in (0, SSH_PORT):
            raise InvalidArgument("cluster.ssh_port", "run-svc submits on the login node it runs on, with no "
                                                      f"SSH: leave it out (got {self.ssh_port})")
        if not self.ssh_user:
            raise InvalidArgument("cluster.ssh_user", "the local account jobs run as is required: run-svc "
                                                      "runs every command there as that account")
        if self.ssh_user == ROOT:
            raise InvalidArgument("cluster.ssh_user", "jobs must not run as root: name an unprivileged "
                                                      "local account")
        if self.login_required:
            raise InvalidArgument("cluster.login_required", "without SSH run-svc cannot put each user's jobs "
                                                            "under their own account: leave it out, or reach "
                                                            "the login node over SSH (--host)")

    def _checked_ssh(self) -> Cluster:
        kind = self.kind.value
        if not (self.on_login_node or self.slurmrestd_url):
            self._check_reached_over_ssh()
        if not _USER.fullmatch(self.ssh_user):
            raise InvalidArgument(
                "cluster.ssh_user",
                f"a {kind} cluster needs the user run-svc signs in as "
                f"on its login node (got {self.ssh_user[:40]!r})",
            )
        if self.credential:
            check_name("cluster.credential", self.credential)
        runtimes = CONTAINER_RUNTIMES[self.kind]
        if self.container_runtime not in runtimes:
            named = ", ".join(r for r in runtimes if r)
            raise InvalidArgument("cluster.container_runtime", f"a {kind} cluster's container runtime is "
                                  f"{named} or none (got {self.container_runtime[:40]!r})")
        if self.ssh_host_key and not _HOST_KEY.fullmatch(self.ssh_host_key.strip()):
            raise InvalidArgument(
                "cluster.ssh_host_key",
                "must be a public host key as known_hosts holds it, e.g. 'ssh-ed25519 AAAAC3Nz…' "
                f"(got {self.ssh_host_key[:40]!r})",
            )
        if not self.work_dir:
            raise InvalidArgument(
                "cluster.work_dir",
                f"a {kind} cluster needs the directory runs' files are staged in, e.g. /scratch/shipyard",
            )
        check_abs_path("cluster.work_dir", self.work_dir)
        for field_name, value in (("cluster.partition", self.partition), ("cluster.queue", self.queue)):
            if value:
                check_name(field_name, value)
        if self.namespace or self.kubeconfig_credential:
            raise InvalidArgument("cluster.namespace", f"a {kind} cluster has no namespace nor kubeconfig")
        if self.service_account:
            raise InvalidArgument("cluster.service_account",
                                  f"a {kind} cluster has no ServiceAccount: that is for KServe on kubernetes")
        return replace(self, ssh_port=0) if self.on_login_node or self.slurmrestd_url else self

    def _check_slurmrestd(self) -> None:
        """A cluster reached through slurmrestd: Slurm's, at an http(s) URL, with a JWT — the operator's
        token credential, or each user's own login — and no SSH."""
        field_name = "cluster.slurmrestd_url"
        if self.kind is not ClusterKind.SLURM:
            raise InvalidArgument(field_name, f"slurmrestd is Slurm's REST API: a {self.kind.value} cluster "
                                              "has none")
        check_text(field_name, self.slurmrestd_url, URL_MAX, multiline=False)
        url = urlsplit(self.slurmrestd_url)
        try:
            port_ok = url.port is None or url.port > 0
        except ValueError:
            port_ok = False
        if url.scheme not in ("http", "https") or not url.hostname or url.username or url.query \
                or url.fragment or not port_ok:
            got = self.slurmrestd_url[:100]
            raise InvalidArgument(field_name, "must be slurmrestd's http:// or https:// address, e.g. "
                                              f"https://slurm.example:6820 (got {got!r})")
        if self.on_login_node:
            raise InvalidArgument(field_name, "a cluster is reached through slurmrestd or from its login "
                                              "node, not both")
        for name, value in (("cluster.host", self.host), ("cluster.ssh_host_key", self.ssh_host_key)):
            if value:
                raise InvalidArgument(name, "run-svc reaches this cluster through slurmrestd, with no SSH: "
                                            "leave it out")
        if self.ssh_port not in (0, SSH_PORT):
            raise InvalidArgument("cluster.ssh_port", "run-svc reaches this cluster through slurmrestd, with "
                                                      f"no SSH: leave it out (got {self.ssh_port})")
        if not self.credential and not self.login_required:
            raise InvalidArgument("cluster.credential", "a cluster reached through slurmrestd needs the "
                                                        "stored token credential holding ssh_user's JWT "
                                                        "(scontrol token), unless each user signs in "
                                                        "(login_required)")

    def _check_reached_over_ssh(self) -> None:
        if not _HOST.fullmatch(self.host):
            raise InvalidArgument(
                "cluster.host",
                f"a {self.kind.value} cluster needs its login node's host name "
                f"(letters, digits, '.' and '-'; got {self.host[:100]!r}), or run-svc on the login node "
                "itself (on_login_node)",
            )
        if not 1 <= self.ssh_port <= 65535:
            raise InvalidArgument("cluster.ssh_port", f"must be 1 to 65535 (got {self.ssh_port})")

    def _checked_kubernetes(self) -> Cluster:
        namespace = self.namespace or "default"
        if not _K8S_NAME.fullmatch(namespace):
            raise InvalidArgument(
                "cluster.namespace",
                f"{namespace[:80]!r} is not a Kubernetes namespace name "
                "(lower-case letters, digits and '-', at most 63)",
            )
        if not self.kubeconfig_credential:
            raise InvalidArgument(
                "cluster.kubeconfig_credential",
                "a kubernetes cluster needs the stored "
                "credential holding its kubeconfig (shipyard credential save)",
            )
        check_name("cluster.kubeconfig_credential", self.kubeconfig_credential)
        if self.service_account and not _K8S_NAME.fullmatch(self.service_account):
            raise InvalidArgument(
                "cluster.service_account",
                f"{self.service_account[:80]!r} is not a Kubernetes ServiceAccount name "
                "(lower-case letters, digits and '-', at most 63)",
            )
        if self.login_required:
            raise InvalidArgument("cluster.login_required",
                                  "each user's own login is for Slurm and LSF clusters so far; a kubernetes "
                                  "cluster runs every run with its kubeconfig")
        if (self.host or self.ssh_user or self.work_dir or self.partition or self.queue or self.ssh_host_key
                or self.container_runtime):
            raise InvalidArgument(
                "cluster.host",
                "a kubernetes cluster is reached through its kubeconfig: "
                "no host, SSH user, work dir, partition or queue",
            )
        return replace(self, namespace=namespace)


# What an operator may change in a cluster's record, and when (UpdateCluster). A name and a kind are for
# good: runs and endpoints name the cluster, and a kind is another cluster altogether.
NEVER_CHANGED = ("name", "kind")
# Read only when a run is submitted (its job script, the checks of what it asks for): runs in flight keep
# what they were submitted with, so these change any time.
FOR_NEW_RUNS = frozenset({"description", "partition", "queue", "gpus", "max_workers", "container_runtime"})
# How runs are reached (login node, account, key, where their files are, which namespace their Jobs are
# in): a run in flight is watched, fetched and stopped through them, so they change only while no run on
# the cluster is queued or running.
WHILE_NO_RUNS = frozenset({"host", "ssh_port", "ssh_user", "credential", "work_dir", "slurmrestd_url",
                           "on_login_node", "login_required", "ssh_host_key", "namespace", "service_account",
                           "kubeconfig_credential"})
# Where a Kubernetes cluster's model servers are (their InferenceServices' namespace, account and API
# server): they change only while the cluster serves no endpoint, so serving-svc never loses one.
WHILE_SERVING_NOTHING = frozenset({"namespace", "service_account", "kubeconfig_credential"})
CHANGEABLE = FOR_NEW_RUNS | WHILE_NO_RUNS


def changed(cluster: Cluster, changes: Mapping[str, Any]) -> tuple[Cluster, list[str]]:
    """``cluster`` with ``changes`` (field name → new value), checked as a new cluster is, and the fields
    whose value it changed; InvalidArgument on ``update_mask`` naming a field that cannot change."""
    if not changes:
        raise InvalidArgument("update_mask", "name the fields to change, e.g. partition, work_dir "
                                             f"(any of {', '.join(sorted(CHANGEABLE))})")
    for name in changes:
        if name in NEVER_CHANGED:
            raise InvalidArgument("update_mask", f"a cluster's {name} never changes: delete the cluster and "
                                                 "add it again")
        if name not in CHANGEABLE:
            raise InvalidArgument("update_mask", f"{name[:80]!r} is not a cluster field that can change "
                                                 f"(those are {', '.join(sorted(CHANGEABLE))})")
    merged = replace(cluster, **changes)
    # A login node reached over SSH after all: on port 22 unless the change names another.
    updated = replace(merged, ssh_port=merged.ssh_port or SSH_PORT).checked()
    return updated, [name for name in sorted(changes) if getattr(updated, name) != getattr(cluster, name)]


def check_fits(cluster: Cluster, spec: RunSpec) -> None:
    """FailedPrecondition naming the field when the run asks ``cluster`` for what it does not offer."""
    if spec.total_gpus > cluster.gpus:
        offered = f"offers {cluster.gpus}" if cluster.gpus else "declares none (cluster add --gpus N)"
        asked = (f"{spec.total_gpus} GPUs asked for ({spec.gpus} on each of {spec.nodes} nodes)"
                 if spec.nodes > 1 else f"{spec.gpus} GPUs asked for")
        raise FailedPrecondition(f"{asked}, but cluster {cluster.name!r} {offered}", field="run.gpus")
    if spec.workers > (most := cluster.max_workers or 1):
        raise FailedPrecondition(f"{spec.workers} workers asked for, but cluster {cluster.name!r} allows "
                                 f"{most} (cluster add --max-workers N)", field="run.workers")
    if not cluster.kind.over_ssh:
        for field_name, value in (("run.time_limit", spec.time_limit), ("run.account", spec.account)):
            if value:
                kind = cluster.kind.value
                raise FailedPrecondition(f"a time limit and an account are for Slurm and LSF clusters; "
                                         f"{cluster.name!r} is a {kind} cluster", field=field_name)

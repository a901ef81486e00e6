"""Clusters as protobuf: the API's Cluster (also the payload of ClusterUpdated), and the changes an
UpdateCluster asks for."""

from __future__ import annotations

from typing import Any

from shipyard.contracts.run.v1 import clusters_pb2 as pb
from shipyard.kit.errors import InvalidArgument
from shipyard.kit.timestamps import timestamp
from shipyard_run.domain.clusters import SSH_PORT, Cluster, ClusterKind

KINDS = {
    pb.CLUSTER_KIND_SLURM: ClusterKind.SLURM,
    pb.CLUSTER_KIND_KUBERNETES: ClusterKind.KUBERNETES,
    pb.CLUSTER_KIND_LSF: ClusterKind.LSF,
}
KIND_NUMBERS = {kind: number for number, kind in KINDS.items()}
SHARED = (
    "name",
    "description",
    "host",
    "ssh_user",
    "credential",
    "partition",
    "queue",
    "work_dir",
    "namespace",
    "kubeconfig_credential",
    "login_required",
    "gpus",
    "max_workers",
    "ssh_host_key",
    "container_runtime",
    "on_login_node",
    "service_account",
    "slurmrestd_url",
)


def cluster_from_proto(message: pb.Cluster) -> Cluster:
    """The domain's cluster from the API's (kind required: InvalidArgument naming it)."""
    kind = KINDS.get(message.kind)
    if kind is None:
        raise InvalidArgument("cluster.kind", "must be slurm, kubernetes or lsf")
    fields = {name: getattr(message, name) for name in SHARED}
    return Cluster(kind=kind, ssh_port=message.ssh_port or SSH_PORT, **fields)


def cluster_to_proto(cluster: Cluster) -> pb.Cluster:
    """The API's view of a cluster."""
    fields = {name: getattr(cluster, name) for name in SHARED}
    ssh_port = cluster.ssh_port if cluster.kind.over_ssh else 0
    return pb.Cluster(
        kind=KIND_NUMBERS[cluster.kind],
        ssh_port=ssh_port,
        owner=cluster.owner,
        create_time=timestamp(cluster.create_time),
        **fields,
    )


def changes_from_proto(message: pb.Cluster, paths: list[str]) -> dict[str, Any]:
    """The new value of each field named in an update mask (field name → value); a path that names no
    field of a cluster keeps None, for the domain to refuse by name. Paths may start with ``cluster.``."""
    changes: dict[str, Any] = {}
    for path in paths:
        name = path.removeprefix("cluster.")
        if name in pb.Cluster.DESCRIPTOR.fields_by_name and name != "create_time":
            value = getattr(message, name)
            changes[name] = KINDS.get(value) if name == "kind" else value
        else:
            changes[name] = None
    return changes

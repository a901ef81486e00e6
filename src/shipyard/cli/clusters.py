"""``shipyard cluster …``: the Slurm, Kubernetes and LSF clusters runs may be sent to (operators add them)."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlsplit

import typer
from google.protobuf.field_mask_pb2 import FieldMask
from rich.markup import escape

from shipyard.cli import output
from shipyard.cli.context import client, console
from shipyard.cli.credentials import read_secret
from shipyard.cli.output import Format, OutputOpt
from shipyard.contracts.repo.v1 import credentials_pb2 as cpb
from shipyard.contracts.run.v1 import clusters_pb2 as pb
from shipyard.kit.cluster_logins import login_credential, slurm_token

app = typer.Typer(help="Clusters: the Slurm, Kubernetes and LSF schedulers runs may be sent to.",
                  no_args_is_help=True)
SSH_PORT = 22  # what the login node listens on unless --ssh-port says otherwise
ON_LOGIN_NODE = "run-svc's own login node, no SSH"


class Kind(StrEnum):
    """The cluster kinds ``--kind`` takes (click refuses others, listing these)."""

    slurm = "slurm"
    kubernetes = "kubernetes"
    lsf = "lsf"


KINDS = {Kind.slurm: pb.CLUSTER_KIND_SLURM, Kind.kubernetes: pb.CLUSTER_KIND_KUBERNETES,
         Kind.lsf: pb.CLUSTER_KIND_LSF}
KIND_NAMES = {value: kind.value for kind, value in KINDS.items()}


def _kind(cluster: pb.Cluster) -> str:
    return KIND_NAMES.get(cluster.kind, "?")


def _where(cluster: pb.Cluster) -> str:
    """The login node (with its port when not 22; run-svc's own when it submits there) or, for
    Kubernetes, the namespace Jobs go to."""
    if cluster.kind == pb.CLUSTER_KIND_KUBERNETES:
        return f"namespace {cluster.namespace or 'default'}"
    if cluster.on_login_node:
        return ON_LOGIN_NODE
    if cluster.slurmrestd_url:
        return f"slurmrestd {cluster.slurmrestd_url}"
    port = f":{cluster.ssh_port}" if cluster.ssh_port not in (0, SSH_PORT) else ""
    return f"{cluster.host}{port}"


def _yes_no(flag: bool) -> str:
    return "yes" if flag else "no"


def _show(cluster: pb.Cluster) -> None:
    stamp = cluster.create_time
    created = stamp.ToDatetime().isoformat(timespec="seconds") if stamp.seconds else ""
    rows = [("name", cluster.name), ("kind", _kind(cluster)), ("description", cluster.description)]
    if cluster.kind == pb.CLUSTER_KIND_KUBERNETES:
        rows += [("namespace", cluster.namespace or "default"),
                 ("kubeconfig credential", cluster.kubeconfig_credential),
                 ("model servers' account", cluster.service_account or "(the namespace's default)")]
    elif cluster.on_login_node:
        rows += [("login node", ON_LOGIN_NODE), ("account", f"{cluster.ssh_user} (jobs run as it)")]
    elif cluster.slurmrestd_url:
        rows += [("slurmrestd", cluster.slurmrestd_url), ("slurm user", cluster.ssh_user),
                 ("token credential", cluster.credential or "(each user's own login)")]
    else:
        rows += [("login node", _where(cluster)), ("ssh user", cluster.ssh_user),
                 ("credential", cluster.credential)]
    if cluster.kind != pb.CLUSTER_KIND_KUBERNETES:
        if cluster.kind == pb.CLUSTER_KIND_LSF:
            rows.append(("queue", cluster.queue or "(the cluster's default)"))
        else:
            rows.append(("partition", cluster.partition or "(the cluster's default)"))
        rows += [("work dir", cluster.work_dir),
                 ("container runtime", cluster.container_runtime or "none (the node's Python)")]
        if not (cluster.on_login_node or cluster.slurmrestd_url):
            rows.append(("host key", cluster.ssh_host_key or "(pinned at the first connection)"))
    rows += [("login required", _yes_no(cluster.login_required)), ("gpus", str(cluster.gpus)),
             ("max workers", str(cluster.max_workers or 1)), ("owner", cluster.owner), ("created", created)]
    console.print(output.fields((label, escape(value)) for label, value in rows))


@app.command()
def add(
    name: str,
    kind: Annotated[Kind, typer.Option(help="The scheduler: slurm, kubernetes or lsf.")],
    host: Annotated[str, typer.Option(help="Slurm, LSF: the login node runs are submitted through.")] = "",
    ssh_port: Annotated[int | None, typer.Option(help="Slurm, LSF: its SSH port (default 22).")] = None,
    ssh_user: Annotated[str, typer.Option(help="Slurm, LSF: the user that signs in to the login node "
                                               "(with --on-login-node: the local account jobs run as, "
                                               "never root).")] = "",
    on_login_node: Annotated[bool, typer.Option("--on-login-node", help="Slurm, LSF: run-svc runs on the "
                                                "login node itself and submits there, with no SSH, as "
                                                "--ssh-user (no --host, --ssh-port, --credential nor "
                                                "--host-key).")] = False,
    credential: Annotated[str, typer.Option(help="Slurm, LSF: your stored credential holding that user's "
                                                 "SSH key (shipyard credential save); with "
                                                 "--slurmrestd-url, a token credential holding the "
                                                 "user's JWT (scontrol token).")] = "",
    slurmrestd_url: Annotated[str, typer.Option(help="Slurm: submit through slurmrestd at this http(s) URL "
                                                     "as --ssh-user with a JWT, instead of over SSH (no "
                                                     "--host); jobs fetch their files from the S3 blob "
                                                     "store.")] = "",
    partition: Annotated[str, typer.Option(help="Slurm: the partition runs go to (default: the "
                                                "cluster's).")] = "",
    queue: Annotated[str, typer.Option(help="LSF: the queue runs go to (default: the cluster's).")] = "",
    work_dir: Annotated[str, typer.Option(help="Slurm, LSF: the absolute directory runs' files are "
                                               "staged in.")] = "",
    namespace: Annotated[str, typer.Option(help="Kubernetes: where Jobs are made (default: default).")] = "",
    kubeconfig_credential: Annotated[str, typer.Option(help="Kubernetes: your stored credential holding "
                                                            "the kubeconfig.")] = "",
    service_account: Annotated[str, typer.Option(help="Kubernetes: the ServiceAccount KServe's model "
                                                      "servers run as; the S3 credentials attached to it "
                                                      "read the model files (default: the namespace's "
                                                      "default).")] = "",
    login_required: Annotated[bool, typer.Option("--login-required", help="Each user signs in to it "
                                                 "(shipyard cluster login) before sending runs.")] = False,
    container_runtime: Annotated[str, typer.Option(help="Slurm, LSF: run each run in its image with "
                                                         "apptainer, or (Slurm) pyxis; default: none.")] = "",
    host_key: Annotated[str, typer.Option(help="Slurm, LSF: the login node's SSH host key ('ssh-ed25519 "
                                                "AAAA…'); left out, the first connection's is pinned.")] = "",
    gpus: Annotated[int, typer.Option(help="The most GPUs one run may have there (0: none).")] = 0,
    max_workers: Annotated[int, typer.Option(help="The most workers of a distributed run (0: 1).")] = 0,
    description: Annotated[str, typer.Option()] = "",
    fmt: OutputOpt = Format.table,
) -> None:
    """Add a cluster (operators only): runs name it with --cluster."""
    over_ssh = kind is not Kind.kubernetes
    cluster = pb.Cluster(
        name=name, kind=KINDS[kind], description=description, host=host,
        ssh_port=ssh_port if ssh_port is not None else (
            SSH_PORT if over_ssh and not (on_login_node or slurmrestd_url) else 0),
        ssh_user=ssh_user, on_login_node=on_login_node, slurmrestd_url=slurmrestd_url,
        credential=credential, partition=partition, queue=queue, work_dir=work_dir, namespace=namespace,
        kubeconfig_credential=kubeconfig_credential, login_required=login_required, gpus=gpus,
        max_workers=max_workers, ssh_host_key=host_key, container_runtime=container_runtime,
        service_account=service_account)
    with client() as c:
        added = c.call(c.clusters.AddCluster, pb.AddClusterRequest(cluster=cluster))
    if output.emit(added, fmt):
        return
    console.print(f"[green]Added {_kind(added)} cluster[/] [bold]{escape(added.name)}[/] "
                  f"({escape(_where(added))}); runs name it with --cluster {escape(added.name)}")


@app.command()
def edit(
    name: str,
    description: Annotated[str | None, typer.Option()] = None,
    partition: Annotated[str | None, typer.Option(help="Slurm: the partition new runs go to ('': the "
                                                       "cluster's default).")] = None,
    queue: Annotated[str | None, typer.Option(help="LSF: the queue new runs go to.")] = None,
    gpus: Annotated[int | None, typer.Option(help="The most GPUs one new run may have there.")] = None,
    max_workers: Annotated[int | None, typer.Option(help="The most workers of a new distributed "
                                                         "run.")] = None,
    container_runtime: Annotated[str | None, typer.Option(help="Slurm, LSF: apptainer, pyxis (Slurm) or "
                                                               "'' (none), for new runs.")] = None,
    host: Annotated[str | None, typer.Option(help="Slurm, LSF: the login node (give its --host-key, or "
                                                  "--host-key '' to pin the next connection's).")] = None,
    ssh_port: Annotated[int | None, typer.Option(help="Slurm, LSF: the login node's SSH port.")] = None,
    ssh_user: Annotated[str | None, typer.Option(help="Slurm, LSF: the user (account) run-svc signs in "
                                                      "as.")] = None,
    on_login_node: Annotated[bool | None, typer.Option("--on-login-node/--over-ssh", help="Slurm, LSF: "
                                                       "submit on run-svc's own login node, or over SSH "
                                                       "(--host).", show_default=False)] = None,
    credential: Annotated[str | None, typer.Option(help="Slurm, LSF: the stored credential run-svc signs "
                                                        "in with.")] = None,
    slurmrestd_url: Annotated[str | None, typer.Option(help="Slurm: slurmrestd's http(s) URL.")] = None,
    work_dir: Annotated[str | None, typer.Option(help="Slurm, LSF: the absolute directory runs' files "
                                                      "are staged in.")] = None,
    namespace: Annotated[str | None, typer.Option(help="Kubernetes: where Jobs and model servers "
                                                       "go.")] = None,
    kubeconfig_credential: Annotated[str | None, typer.Option(help="Kubernetes: the stored credential "
                                                                   "holding the kubeconfig.")] = None,
    service_account: Annotated[str | None, typer.Option(help="Kubernetes: the ServiceAccount model "
                                                             "servers run as.")] = None,
    login_required: Annotated[bool | None, typer.Option("--login-required/--no-login-required",
                                                        help="Whether each user signs in to it first.",
                                                        show_default=False)] = None,
    host_key: Annotated[str | None, typer.Option(help="Slurm, LSF: the login node's SSH host key ('': "
                                                      "pin the one the next connection sees).")] = None,
    fmt: OutputOpt = Format.table,
) -> None:
    """Change a cluster (operators only): only the options given change. What new runs read (partition,
    queue, GPUs, workers, container runtime, description) changes any time; how runs are reached (host,
    port, user, credential, work dir, login required, …) only while no run on it is queued or running; a
    Kubernetes cluster's namespace, ServiceAccount and kubeconfig only while it serves nothing. Its name
    and kind never change."""
    given: dict[str, Any] = {
        "description": description, "partition": partition, "queue": queue, "gpus": gpus,
        "max_workers": max_workers, "container_runtime": container_runtime, "host": host,
        "ssh_port": ssh_port, "ssh_user": ssh_user, "on_login_node": on_login_node, "credential": credential,
        "slurmrestd_url": slurmrestd_url, "work_dir": work_dir, "namespace": namespace,
        "kubeconfig_credential": kubeconfig_credential, "service_account": service_account,
        "login_required": login_required, "ssh_host_key": host_key}
    changes = {field: value for field, value in given.items() if value is not None}
    if not changes:
        raise typer.BadParameter("give at least one option to change, e.g. --partition gpu or --work-dir "
                                 "/scratch/shipyard (shipyard cluster edit --help lists them)",
                                 param_hint="NAME")
    request = pb.UpdateClusterRequest(name=name, cluster=pb.Cluster(**changes),
                                      update_mask=FieldMask(paths=sorted(changes)))
    with client() as c:
        updated = c.call(c.clusters.UpdateCluster, request)
    if output.emit(updated, fmt):
        return
    changed = ", ".join(sorted(changes))
    console.print(f"[green]Changed cluster[/] [bold]{escape(updated.name)}[/] ({escape(changed)})")
    _show(updated)


@app.command("list")
def list_(fmt: OutputOpt = Format.table) -> None:
    """The clusters runs may be sent to, by name (beside the platform's own machine, "local")."""
    with client() as c:
        reply = c.call(c.clusters.ListClusters, pb.ListClustersRequest())
    if output.emit(list(reply.clusters), fmt):
        return
    table = output.table("Name", "Kind", "Where", "Login required", "GPUs")
    for cluster in reply.clusters:
        table.add_row(escape(cluster.name), _kind(cluster), escape(_where(cluster)),
                      _yes_no(cluster.login_required), str(cluster.gpus))
    console.print(table if table.row_count else "[dim]No clusters: runs go to the local machine.[/]")


@app.command()
def get(name: str, fmt: OutputOpt = Format.table) -> None:
    """One cluster: how run-svc reaches it, whether users sign in to it and what a run may ask of it."""
    with client() as c:
        cluster = c.call(c.clusters.GetCluster, pb.GetClusterRequest(name=name))
    if output.emit(cluster, fmt):
        return
    _show(cluster)


@app.command()
def login(
    name: str,
    user: Annotated[str, typer.Option(help="Your user name on the cluster's login node.")],
    key_file: Annotated[Path | None, typer.Option(help="Your private SSH key for it (default: a hidden "
                                                       "prompt; never on the command line).")] = None,
    token_file: Annotated[Path | None, typer.Option(help="A cluster reached through slurmrestd: a file "
                                                         "holding your JWT (scontrol token).")] = None,
    stdin: Annotated[bool, typer.Option("--stdin", help="Read the key (or token) from standard "
                                                        "input.")] = False,
) -> None:
    """Sign in to a cluster where each user's runs go under their own account (login required): your
    key (a slurmrestd cluster: your JWT) is stored encrypted, as your credential ``cluster-NAME``, and used
    for your runs there only."""
    with client() as c:
        cluster = c.call(c.clusters.GetCluster, pb.GetClusterRequest(name=name))
        rest = bool(cluster.slurmrestd_url)
        if rest and key_file is not None:
            raise typer.BadParameter(f"cluster {name} is reached through slurmrestd: give your JWT with "
                                     "--token-file, not an SSH key", param_hint="--key-file")
        if not rest and token_file is not None:
            raise typer.BadParameter(f"cluster {name} is reached over SSH: give your SSH key with --key-file",
                                     param_hint="--token-file")
        secret = slurm_token(read_secret(token_file, stdin)) if rest else read_secret(key_file, stdin)
        kind = cpb.CREDENTIAL_TYPE_TOKEN if rest else cpb.CREDENTIAL_TYPE_SSH_KEY
        host = urlsplit(cluster.slurmrestd_url).netloc if rest else cluster.host
        saved = c.call(c.saved_credentials.SaveCredential, cpb.SaveCredentialRequest(
            credential=cpb.Credential(name=login_credential(name), type=kind, host=host, username=user),
            secret=secret))
    note = "" if cluster.login_required else " (it needs no login: your runs there go under its own account)"
    console.print(f"[green]Signed in to cluster[/] [bold]{escape(name)}[/] as {escape(user)} "
                  f"({saved.fingerprint}){escape(note)}")


@app.command()
def logout(name: str) -> None:
    """Forget your login to a cluster (runs already sent there keep going)."""
    with client() as c:
        c.call(c.saved_credentials.DeleteCredential, cpb.DeleteCredentialRequest(name=login_credential(name)))
    console.print(f"[green]Signed out of cluster[/] [bold]{escape(name)}[/]")


@app.command()
def delete(name: str) -> None:
    """Delete a cluster (operators only)."""
    with client() as c:
        c.call(c.clusters.DeleteCluster, pb.DeleteClusterRequest(name=name))
    console.print(f"[green]Deleted cluster[/] [bold]{escape(name)}[/]")

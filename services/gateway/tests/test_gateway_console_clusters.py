"""The console's cluster forms without a browser: how "+ Cluster", a cluster's edit form and the run
form's Target Cluster become API messages. (The pages themselves: tests/browser/test_console_clusters.py.)"""

from __future__ import annotations

import pytest
from shipyard_gateway.entrypoints.console.calls import ConsoleError
from shipyard_gateway.entrypoints.console.clusters import (
    changed_fields,
    cluster_from,
    form_values,
    login_saved,
    where,
)
from shipyard_gateway.entrypoints.console.run_form import run_from

from shipyard.contracts.repo.v1 import credentials_pb2 as cpb
from shipyard.contracts.run.v1 import clusters_pb2 as pb

EVERY_FIELD = {  # what a browser without JavaScript sends: every kind's fields, filled or not
    "cluster.name": "hpc", "cluster.kind": "slurm", "cluster.description": "GPUs",
    "cluster.host": " login.x ", "cluster.ssh_port": "", "cluster.ssh_user": "svc",
    "cluster.credential": "hpc-key",
    "cluster.partition": "gpu", "cluster.queue": "normal", "cluster.work_dir": "/scratch",
    "cluster.ssh_host_key": "", "cluster.login_required": "on", "cluster.kubeconfig_credential": "kube",
    "cluster.namespace": "ml", "cluster.gpus": "4", "cluster.max_workers": "",
}


def test_a_slurm_cluster_takes_only_the_slurm_fields() -> None:
    cluster = cluster_from(EVERY_FIELD)
    assert cluster == pb.Cluster(name="hpc", kind=pb.CLUSTER_KIND_SLURM, description="GPUs", host="login.x",
                                 ssh_port=22, ssh_user="svc", credential="hpc-key", partition="gpu",
                                 work_dir="/scratch", login_required=True, gpus=4)
    assert where(cluster) == "login.x"


def test_an_lsf_cluster_takes_its_queue_not_a_partition() -> None:
    cluster = cluster_from({**EVERY_FIELD, "cluster.kind": "lsf", "cluster.ssh_port": "2222"})
    assert (cluster.queue, cluster.partition, cluster.ssh_port) == ("normal", "", 2222)
    assert where(cluster) == "login.x:2222"


def test_a_kubernetes_cluster_takes_no_login_node() -> None:
    cluster = cluster_from({**EVERY_FIELD, "cluster.kind": "kubernetes"})
    assert cluster == pb.Cluster(name="hpc", kind=pb.CLUSTER_KIND_KUBERNETES, description="GPUs",
                                 kubeconfig_credential="kube", namespace="ml", gpus=4)
    assert where(cluster) == "namespace ml"


@pytest.mark.parametrize(("values", "field"), [
    ({**EVERY_FIELD, "cluster.kind": "pbs"}, "cluster.kind"),
    ({**EVERY_FIELD, "cluster.gpus": "four"}, "cluster.gpus"),
    ({**EVERY_FIELD, "cluster.ssh_port": "22a"}, "cluster.ssh_port"),
])
def test_what_cannot_be_read_is_refused_naming_its_field(values: dict[str, str], field: str) -> None:
    with pytest.raises(ConsoleError) as refused:
        cluster_from(values)
    assert refused.value.field == field


def test_the_run_form_sends_the_target_cluster_with_its_time_limit_and_account() -> None:
    run = run_from({"name": "t1", "command": "true", "cluster": " hpc ", "time_limit": "2:00:00 ",
                    "account": "ml"}, "")
    assert (run.cluster, run.time_limit, run.account) == ("hpc", "2:00:00", "ml")
    assert run_from({"name": "t2", "command": "true"}, "").cluster == ""  # local


def test_a_cluster_on_its_login_node_takes_no_ssh_port_and_says_where() -> None:
    bare = {key: value for key, value in EVERY_FIELD.items()
            if key not in ("cluster.host", "cluster.credential", "cluster.login_required")}
    cluster = cluster_from({**bare, "cluster.on_login_node": "on"})  # the SSH fields hidden, not sent
    assert cluster == pb.Cluster(name="hpc", kind=pb.CLUSTER_KIND_SLURM, description="GPUs", ssh_user="svc",
                                 partition="gpu", work_dir="/scratch", on_login_node=True, gpus=4)
    assert where(cluster) == "run-svc's own login node, no SSH"
    assert not cluster_from({**EVERY_FIELD, "cluster.kind": "kubernetes",
                             "cluster.on_login_node": "on"}).on_login_node


def test_a_slurmrestd_cluster_drops_what_only_ssh_needs() -> None:
    url = "https://slurm.example:6820"
    sent = {**EVERY_FIELD, "cluster.slurmrestd_url": f" {url} ", "cluster.ssh_port": "22",
            "cluster.ssh_host_key": "ssh-ed25519 AAAA", "cluster.on_login_node": "on",
            "cluster.credential": "svc-jwt"}  # without JavaScript every field comes
    cluster = cluster_from(sent)
    assert cluster == pb.Cluster(name="hpc", kind=pb.CLUSTER_KIND_SLURM, description="GPUs", ssh_user="svc",
                                 credential="svc-jwt", partition="gpu", work_dir="/scratch",
                                 login_required=True, slurmrestd_url=url, gpus=4)
    assert where(cluster) == f"slurmrestd {url}"
    assert not cluster_from({**sent, "cluster.kind": "lsf"}).slurmrestd_url  # Slurm's alone


def test_a_login_to_a_slurmrestd_cluster_is_a_token_for_its_address() -> None:
    rest = pb.Cluster(name="hpc", kind=pb.CLUSTER_KIND_SLURM, slurmrestd_url="https://slurm.example:6820")
    saving = login_saved(rest, "dana", " SLURM_JWT=eyJ.a.b\n")  # as scontrol token prints it
    assert saving == cpb.SaveCredentialRequest(secret="eyJ.a.b", credential=cpb.Credential(
        name="cluster-hpc", type=cpb.CREDENTIAL_TYPE_TOKEN, host="slurm.example:6820", username="dana"))
    over_ssh = pb.Cluster(name="hpc", kind=pb.CLUSTER_KIND_SLURM, host="login.x", ssh_port=22)
    key = "-----BEGIN OPENSSH PRIVATE KEY-----\n…\n"
    assert login_saved(over_ssh, "dana", key) == cpb.SaveCredentialRequest(
        secret=key, credential=cpb.Credential(name="cluster-hpc", type=cpb.CREDENTIAL_TYPE_SSH_KEY,
                                              host="login.x", username="dana"))


# --- the edit form: prefilled from the record, sending only what was changed --------------------------

RECORDS = [
    pb.Cluster(name="hpc", kind=pb.CLUSTER_KIND_SLURM, description="GPUs", host="login.x", ssh_port=2222,
               ssh_user="svc", credential="hpc-key", partition="gpu", work_dir="/scratch",
               login_required=True, gpus=4, ssh_host_key="ssh-ed25519 AAAA", owner="olga"),
    pb.Cluster(name="node", kind=pb.CLUSTER_KIND_LSF, ssh_user="svc", queue="normal", work_dir="/scratch",
               on_login_node=True),
    pb.Cluster(name="rest", kind=pb.CLUSTER_KIND_SLURM, ssh_user="svc", credential="svc-jwt",
               work_dir="/scratch", slurmrestd_url="https://slurm.example:6820"),
    pb.Cluster(name="k8s", kind=pb.CLUSTER_KIND_KUBERNETES, namespace="default",
               kubeconfig_credential="kube",
               service_account="kserve-s3", gpus=2),
]


@pytest.mark.parametrize("record", RECORDS, ids=[r.name for r in RECORDS])
def test_the_edit_form_left_as_it_was_changes_nothing(record: pb.Cluster) -> None:
    assert changed_fields(record, cluster_from(form_values(record))) == []


def test_the_edit_form_sends_only_the_fields_changed() -> None:
    hpc = RECORDS[0]
    values = {**form_values(hpc), "cluster.partition": "a100", "cluster.work_dir": "/data",
              "cluster.login_required": ""}  # an unticked box is not sent at all; "" reads the same
    wanted = cluster_from(values)
    assert changed_fields(hpc, wanted) == ["partition", "work_dir", "login_required"]
    assert (wanted.partition, wanted.work_dir, wanted.login_required) == ("a100", "/data", False)
    k8s = RECORDS[3]
    assert changed_fields(k8s, cluster_from({**form_values(k8s), "cluster.namespace": "ml"})) == ["namespace"]

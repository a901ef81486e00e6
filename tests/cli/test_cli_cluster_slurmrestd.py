"""``shipyard cluster add --slurmrestd-url``, ``cluster get`` of such a cluster, and ``cluster login
--token-file``: a Slurm cluster reached through slurmrestd with a JWT instead of SSH."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from google.protobuf.message import Message
from typer.testing import CliRunner

from shipyard.cli.main import app
from shipyard.contracts.repo.v1 import credentials_pb2 as cpb
from shipyard.contracts.run.v1 import clusters_pb2 as pb

from .conftest import Replies

URL = "https://slurm.example:6820"
REST = pb.Cluster(name="hpc", kind=pb.CLUSTER_KIND_SLURM, slurmrestd_url=URL, ssh_user="svc",
                  credential="hpc-jwt", partition="gpu", work_dir="/scratch/shipyard", owner="ops")


def invoke(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["cluster", *args])
    return result.exit_code, result.output


def echo(request: Message) -> pb.Cluster:
    assert isinstance(request, pb.AddClusterRequest)
    return request.cluster


def test_add_with_a_slurmrestd_url_sends_no_ssh_port(replies: dict[str, Any]) -> None:
    replies["AddCluster"] = echo
    code, out = invoke("add", "hpc", "--kind", "slurm", "--slurmrestd-url", URL, "--ssh-user", "svc",
                       "--credential", "hpc-jwt", "--work-dir", "/scratch/shipyard", "--partition", "gpu")
    assert code == 0, out
    assert f"Added slurm cluster hpc (slurmrestd {URL})" in " ".join(out.split())
    assert [request for _, request in Replies.calls] == [pb.AddClusterRequest(cluster=pb.Cluster(
        name="hpc", kind=pb.CLUSTER_KIND_SLURM, slurmrestd_url=URL, ssh_user="svc", credential="hpc-jwt",
        partition="gpu", work_dir="/scratch/shipyard"))]


def test_get_shows_slurmrestd_its_user_and_token_and_nothing_of_ssh(replies: dict[str, Any]) -> None:
    replies["GetCluster"] = REST
    code, out = invoke("get", "hpc")
    assert code == 0, out
    lines = {line.split("  ")[0].strip(): line.split("  ", 1)[1].strip()
             for line in out.splitlines() if "  " in line}
    assert lines["slurmrestd"] == URL and lines["slurm user"] == "svc", out
    assert lines["token credential"] == "hpc-jwt", out
    assert "host key" not in lines and "ssh user" not in lines, out


def test_login_stores_the_users_jwt_as_a_token(replies: dict[str, Any], tmp_path: Path) -> None:
    replies["GetCluster"] = pb.Cluster(name="hpc", kind=pb.CLUSTER_KIND_SLURM, slurmrestd_url=URL,
                                       login_required=True)
    replies["SaveCredential"] = cpb.Credential(name="cluster-hpc", fingerprint="SHA256:abc")
    token = tmp_path / "jwt"
    token.write_text("SLURM_JWT=eyJ.the.token\n")  # as scontrol token prints it
    code, out = invoke("login", "hpc", "--user", "ana", "--token-file", str(token))
    assert code == 0, out
    saved = Replies.calls[-1][1]
    assert isinstance(saved, cpb.SaveCredentialRequest)
    assert saved.credential == cpb.Credential(name="cluster-hpc", type=cpb.CREDENTIAL_TYPE_TOKEN,
                                              host="slurm.example:6820", username="ana")
    assert saved.secret == "eyJ.the.token"


def test_login_refuses_an_ssh_key_for_slurmrestd_and_a_token_for_ssh(replies: dict[str, Any],
                                                                     tmp_path: Path) -> None:
    secret = tmp_path / "secret"
    secret.write_text("x")
    replies["GetCluster"] = REST
    code, out = invoke("login", "hpc", "--user", "ana", "--key-file", str(secret))
    assert code != 0 and "--token-file" in out, out
    replies["GetCluster"] = pb.Cluster(name="hpc", kind=pb.CLUSTER_KIND_SLURM, host="login.example")
    code, out = invoke("login", "hpc", "--user", "ana", "--token-file", str(secret))
    assert code != 0 and "--key-file" in out, out
    assert not [call for call in Replies.calls if call[0] == "SaveCredential"]

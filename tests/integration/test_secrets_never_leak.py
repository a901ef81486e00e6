"""A credential's secret never appears in any API response, log, event or stored file."""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path

import pytest
from conftest import cli
from google.protobuf import json_format

from shipyard.client.connection import Client, ClientError
from shipyard.contracts.gateway.v1 import gateway_pb2
from shipyard.contracts.repo.v1 import credentials_pb2 as cpb
from shipyard.contracts.repo.v1 import repos_pb2 as pb
from shipyard.local.harness import Stack

SECRET = "ghp_Sh1pyardNeverLeaks0123456789abcd"
MINIO_SECRET = "minio-Secret-Key-Never-Leaks-42"


def test_secrets_stay_secret(stack: Stack, admin: Client, tmp_path: Path) -> None:
    home = tmp_path / "home"
    cli(stack, home, "login", "--data-dir", str(stack.data_dir))
    secret_file = tmp_path / "token"
    secret_file.write_text(SECRET)
    cli(
        stack,
        home,
        "credential",
        "save",
        "gh",
        "--type",
        "token",
        "--host",
        "github.com",
        "--secret-file",
        str(secret_file),
    )
    answers = [
        cli(stack, home, "credential", "list").stdout,
        cli(stack, home, "credential", "last", "--host", "github.com", "--type", "token").stdout,
    ]
    saved = admin.call(
        admin.saved_credentials.SaveCredential,
        cpb.SaveCredentialRequest(
            credential=cpb.Credential(
                name="minio",
                type=cpb.CREDENTIAL_TYPE_ACCESS_KEY,
                host="minio.example.org:9000",
                username="AKIAEXAMPLE",
            ),
            secret=MINIO_SECRET,
        ),
    )
    answers.append(json_format.MessageToJson(saved))
    with pytest.raises(ClientError) as bad:  # even a refused secret is not echoed back
        admin.call(
            admin.saved_credentials.SaveCredential,
            cpb.SaveCredentialRequest(
                credential=cpb.Credential(name="bad", type=cpb.CREDENTIAL_TYPE_TOKEN, host="github.com"),
                secret=SECRET + "\nsecond line",
            ),
        )
    answers.append(bad.value.message)

    repo = admin.call(
        admin.repos.CreateRepo,
        pb.CreateRepoRequest(
            repo=pb.Repo(
                kind=pb.REPO_KIND_CODE,
                name="private-train",
                versioning=pb.VERSIONING_NONE,
                source=pb.Source(
                    git=pb.GitSource(url="https://github.com/acme/private.git", credential="gh")
                ),
            )
        ),
    )
    answers.append(json_format.MessageToJson(repo))
    answers.append(cli(stack, home, "code", "get", "private-train").stdout)
    missing = cli(
        stack,
        home,
        "code",
        "create",
        "other",
        "--git",
        "https://github.com/acme/o.git",
        "--credential",
        "nope",
        check=False,
    )
    assert "credential 'nope' not found" in missing.stderr
    answers.append(_http(stack, admin, "shipyard.repo.v1.CredentialService/ListCredentials", {}))
    answers.append(_http(stack, admin, "shipyard.repo.v1.RepoService/ListRepos", {}))
    events = cli(
        stack,
        home,
        "events",
        "watch",
        "--from-start",
        "--json",
        "--count",
        "1",
        "--type",
        "io.shipyard.repo.created.v1",
    ).stdout
    answers.append(events)

    for text in answers:
        assert SECRET not in text and MINIO_SECRET not in text
    assert "private-train" in events and "github.com" in answers[0]
    for path in _every_file(stack.data_dir):
        data = path.read_bytes()
        assert SECRET.encode() not in data and MINIO_SECRET.encode() not in data, f"a secret is in {path}"


def _http(stack: Stack, admin: Client, method: str, body: dict[str, object]) -> str:
    request = urllib.request.Request(
        f"{stack.http_url}/api/{method}",
        data=json.dumps(body).encode(),
        method="POST",
        headers={"Authorization": f"Bearer {admin.credentials.token}"},
    )
    with urllib.request.urlopen(request, timeout=30) as reply:
        return str(reply.read().decode())


def _every_file(root: Path) -> list[Path]:
    """Logs, every service's database (and WAL), the JetStream store, blobs: all of it."""
    found = [p for p in root.rglob("*") if p.is_file()]
    assert any(p.suffix == ".log" for p in found) and any("store.db" in p.name for p in found)
    return found


def test_status_says_where_blobs_go(admin: Client) -> None:
    status = admin.call(admin.platform.GetStatus, gateway_pb2.GetStatusRequest())
    assert status.blob_url.endswith("/api/blobs")

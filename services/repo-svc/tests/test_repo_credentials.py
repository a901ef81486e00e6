"""Credentials: secret formats, encryption at rest, the last one per host and type."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa
from repo_world import World, repo_world
from shipyard_repo.app.credentials import Credentials
from shipyard_repo.domain.credentials import CredentialFields, CredentialType, check_secret

from shipyard.kit.caller import Caller
from shipyard.kit.errors import InvalidArgument, NotFound, PermissionDenied
from shipyard.kit.secrets import load_key
from shipyard.kit.testing import ALICE, BOB

SECRET = "ghp_s3cr3t-never-shown"
# Who calls repo-svc, as its assertions say: run-svc on a user's behalf, and users through the gateway.
FOR_RUN_SVC = Caller("bob", frozenset({"data-scientist"}), via="run-svc")
OPERATOR_VIA_GATEWAY = Caller("admin", frozenset({"operator"}), via="gateway")
ALICE_VIA_GATEWAY = Caller("alice", frozenset({"data-scientist"}), via="gateway")
FOR_SERVING_SVC = Caller("bob", frozenset({"data-scientist"}), via="serving-svc")
LINEAGE_SVC = Caller("bob", frozenset({"data-scientist"}), via="lineage-svc")


def _rsa() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=1024)


def _pem(key: object, fmt: serialization.PrivateFormat, password: bytes | None = None) -> str:
    encryption = (serialization.BestAvailableEncryption(password) if password
                  else serialization.NoEncryption())
    return key.private_bytes(serialization.Encoding.PEM, fmt, encryption).decode()  # type: ignore[attr-defined]


@pytest.mark.parametrize("make", [
    pytest.param(lambda: _pem(_rsa(), serialization.PrivateFormat.TraditionalOpenSSL), id="rsa-pem"),
    pytest.param(lambda: _pem(_rsa(), serialization.PrivateFormat.PKCS8), id="pkcs8-pem"),
    pytest.param(lambda: _pem(_rsa(), serialization.PrivateFormat.OpenSSH), id="rsa-openssh"),
    pytest.param(lambda: _pem(ed25519.Ed25519PrivateKey.generate(), serialization.PrivateFormat.OpenSSH),
                 id="ed25519-openssh"),
])
def test_ssh_keys_in_pem_openssh_and_rsa_formats_are_accepted(make: object) -> None:
    check_secret(CredentialType.SSH_KEY, make(), "")  # type: ignore[operator]


def test_a_passphrase_protected_key_is_refused_with_a_reason() -> None:
    key = _pem(_rsa(), serialization.PrivateFormat.PKCS8, password=b"pass")
    with pytest.raises(InvalidArgument, match="passphrase"):
        check_secret(CredentialType.SSH_KEY, key, "")


@pytest.mark.parametrize(("kind", "secret", "username", "problem"), [
    (CredentialType.SSH_KEY, "-----BEGIN OPENSSH PRIVATE KEY-----\nnope\n", "", "not a private key"),
    (CredentialType.TOKEN, "", "", "must not be empty"),
    (CredentialType.TOKEN, "two\nlines", "", "single line"),
    (CredentialType.PASSWORD, "pw", "", "needs a username"),
    (CredentialType.ACCESS_KEY, "secret", "", "needs a username"),
    (CredentialType.GCP_KEY, "{}", "", "service-account key"),
    (CredentialType.KUBECONFIG, "apiVersion: v1\nclusters: []\n", "", "not a kubeconfig"),
    (CredentialType.KUBECONFIG, "{not yaml", "", "not a kubeconfig"),
    (CredentialType.TOKEN, "x" * 70_000, "", "at most"),
])
def test_bad_secrets_are_refused_without_echoing_them(kind: CredentialType, secret: str, username: str,
                                                      problem: str) -> None:
    with pytest.raises(InvalidArgument, match=problem) as caught:
        check_secret(kind, secret, username)
    assert not secret or secret not in str(caught.value)


def test_a_gcp_service_account_key() -> None:
    check_secret(CredentialType.GCP_KEY, json.dumps({"type": "service_account", "private_key": "k"}), "")


def test_a_kubeconfig_is_kept_as_kubectl_writes_it_over_many_lines() -> None:
    check_secret(CredentialType.KUBECONFIG, """apiVersion: v1
kind: Config
clusters:
- name: prod
  cluster: {server: "https://k8s.example:6443"}
users:
- name: shipyard
  user: {token: abc}
contexts:
- name: prod
  context: {cluster: prod, user: shipyard, namespace: ml}
current-context: prod
""", "")


@pytest.fixture
async def wired(tmp_path: Path) -> tuple[Credentials, World]:
    world = await repo_world(tmp_path)
    return world.app.credentials, world


async def test_the_secret_is_stored_sealed_and_comes_back_only_through_reveal(
        wired: tuple[Credentials, World]) -> None:
    credentials, world = wired
    saved = await credentials.save(ALICE, CredentialFields("gh", CredentialType.TOKEN, "github.com"), SECRET)
    found = await world.read(lambda uow: uow.credentials.get("alice", "gh"))
    assert found is not None
    stored, sealed = found
    assert SECRET not in sealed and SECRET not in repr(stored) and SECRET not in repr(saved)
    assert saved.fingerprint.startswith("hmac-sha256:")
    assert (await credentials.reveal("alice", "gh"))[1] == SECRET


async def test_the_last_credential_per_host_and_type_is_what_forms_prefill(
        wired: tuple[Credentials, World]) -> None:
    credentials, _ = wired
    await credentials.save(ALICE, CredentialFields("old", CredentialType.TOKEN, "github.com"), "t1")
    await credentials.save(ALICE, CredentialFields("new", CredentialType.TOKEN, "github.com"), "t2")
    await credentials.save(ALICE, CredentialFields("pw", CredentialType.PASSWORD, "github.com", "al"), "p")
    assert (await credentials.last(ALICE, "github.com", CredentialType.TOKEN)).name == "new"
    await credentials.save(ALICE, CredentialFields("old", CredentialType.TOKEN, "github.com"), "t3")
    assert (await credentials.last(ALICE, "github.com", CredentialType.TOKEN)).name == "old"
    with pytest.raises(NotFound):
        await credentials.last(BOB, "github.com", CredentialType.TOKEN)  # each user's own


async def test_a_replaced_secret_changes_the_fingerprint_and_delete_removes_it(
        wired: tuple[Credentials, World]) -> None:
    credentials, world = wired
    first = await credentials.save(ALICE, CredentialFields("gh", CredentialType.TOKEN, "github.com"), "t1")
    second = await credentials.save(ALICE, CredentialFields("gh", CredentialType.TOKEN, "github.com"), "t2")
    assert first.fingerprint != second.fingerprint and first.create_time == second.create_time
    await credentials.delete(ALICE, "gh")
    assert await world.documents("credentials") == []
    with pytest.raises(NotFound):
        await credentials.delete(ALICE, "gh")


async def test_run_svc_opens_a_stored_key_with_its_secret_and_the_secret_is_not_logged(
        wired: tuple[Credentials, World], caplog: pytest.LogCaptureFixture) -> None:
    credentials, _ = wired
    key = _pem(ed25519.Ed25519PrivateKey.generate(), serialization.PrivateFormat.OpenSSH)
    fields = CredentialFields("hpc-key", CredentialType.SSH_KEY, "login.hpc", "svc")
    await credentials.save(ALICE, fields, key)
    with caplog.at_level(logging.DEBUG):
        credential, secret = await credentials.open(FOR_RUN_SVC, "alice", "hpc-key")
    assert secret == key
    assert (credential.name, credential.type, credential.host, credential.username, credential.owner) == (
        "hpc-key", CredentialType.SSH_KEY, "login.hpc", "svc", "alice")
    assert "hpc-key" in caplog.text and "PRIVATE KEY" not in caplog.text


async def test_serving_svc_opens_a_clusters_kubeconfig(wired: tuple[Credentials, World]) -> None:
    """serving-svc reaches a Kubernetes cluster's KServe with the kubeconfig its operator stored."""
    credentials, _ = wired
    await credentials.save(ALICE, CredentialFields("kube", CredentialType.TOKEN, "k8s.example"), SECRET)
    credential, secret = await credentials.open(FOR_SERVING_SVC, "alice", "kube")
    assert (credential.name, secret) == ("kube", SECRET)


@pytest.mark.parametrize("caller", [ALICE_VIA_GATEWAY, OPERATOR_VIA_GATEWAY, ALICE, LINEAGE_SVC], ids=[
    "the-owner-via-the-gateway", "an-operator-via-the-gateway", "no-signer", "another-service"])
async def test_no_one_but_run_svc_opens_a_secret(wired: tuple[Credentials, World], caller: Caller) -> None:
    credentials, _ = wired
    await credentials.save(ALICE, CredentialFields("gh", CredentialType.TOKEN, "github.com"), SECRET)
    with pytest.raises(PermissionDenied, match="only run-svc") as refused:
        await credentials.open(caller, "alice", "gh")
    assert SECRET not in str(refused.value)
    with pytest.raises(PermissionDenied):  # refused before looking: a missing one is no different
        await credentials.open(caller, "alice", "ghost")


async def test_opening_a_missing_credential_names_it(wired: tuple[Credentials, World]) -> None:
    credentials, _ = wired
    await credentials.save(ALICE, CredentialFields("gh", CredentialType.TOKEN, "github.com"), SECRET)
    with pytest.raises(NotFound, match="'hpc-key' of 'alice'"):
        await credentials.open(FOR_RUN_SVC, "alice", "hpc-key")
    with pytest.raises(NotFound, match="'gh' of 'bob'"):  # each owner's own
        await credentials.open(FOR_RUN_SVC, "bob", "gh")


@pytest.mark.parametrize(("owner", "name", "field"), [("", "gh", "owner"), ("alice", "", "name")])
async def test_opening_needs_an_owner_and_a_name(wired: tuple[Credentials, World], owner: str, name: str,
                                                 field: str) -> None:
    credentials, _ = wired
    with pytest.raises(InvalidArgument) as refused:
        await credentials.open(FOR_RUN_SVC, owner, name)
    assert refused.value.field == field


@pytest.mark.parametrize("host", ["https://github.com", "user@github.com", "github.com/x", "git hub"])
async def test_a_host_is_a_host(wired: tuple[Credentials, World], host: str) -> None:
    credentials, _ = wired
    with pytest.raises(InvalidArgument, match=r"credential\.host"):
        await credentials.save(ALICE, CredentialFields("gh", CredentialType.TOKEN, host), "t")


def test_the_key_file_is_made_once_private_and_a_bad_key_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "secret.key"
    key = load_key("", path)
    assert load_key("", path) == key and path.stat().st_mode & 0o777 == 0o600
    with pytest.raises(ValueError, match="32 bytes"):
        load_key("too-short", path)

"""Attack: reading a stored credential's secret through the internal OpenCredential.

run-svc's cluster executors open the SSH key an operator stored for a cluster, and serving-svc the
kubeconfig of a Kubernetes cluster it serves models on; nobody else may (no other service, and no
ServingService reply carries a secret back to a user). A
user (an operator, or the key's own owner) calls OpenCredential through the gateway, over gRPC and
over HTTP/JSON; a process on the machine calls repo-svc directly with an assertion the gateway
signed (here made with the platform's key, which the test may read as the platform's user), or one
claiming to be run-svc signed with a key of its own, or signed as another service (lineage-svc). Each
gets no secret; the controls, signed as run-svc or serving-svc with the platform's key, get it.
"""

from __future__ import annotations

import http.client
import json
from collections.abc import Iterator
from urllib.parse import urlsplit

import grpc
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519
from google.protobuf.descriptor import Descriptor

from shipyard.client.connection import Client, ClientError
from shipyard.contracts.repo.v1 import credentials_pb2 as pb
from shipyard.contracts.repo.v1 import credentials_pb2_grpc
from shipyard.contracts.serving.v1 import serving_pb2
from shipyard.kit.assertions import CallerAssertions, load_internal_key, new_key
from shipyard.kit.caller import Caller
from shipyard.local.harness import Stack
from tests.support.users import new_user

OPEN = "shipyard.repo.v1.CredentialService/OpenCredential"
KEY = ed25519.Ed25519PrivateKey.generate().private_bytes(
    serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH, serialization.NoEncryption()).decode()
KEY_BODY = KEY.splitlines()[4]  # private bytes of it (the first lines are the format's header)
ADMIN = Caller("admin", frozenset({"operator"}))


@pytest.fixture(scope="module")
def mallory_token(admin: Client) -> str:
    """A data scientist, who stores a key of her own."""
    return new_user(admin, "mallory")


@pytest.fixture(scope="module")
def keys(stack: Stack, admin: Client, mallory_token: str) -> None:
    """The operator's cluster key (what the attacker is after) and mallory's own."""
    mallory = stack.client(mallory_token)
    try:
        for client, name in ((admin, "hpc-key"), (mallory, "my-key")):
            client.call(client.saved_credentials.SaveCredential, pb.SaveCredentialRequest(
                credential=pb.Credential(name=name, type=pb.CREDENTIAL_TYPE_SSH_KEY, host="login.hpc.example",
                                         username="svc"), secret=KEY))
    finally:
        mallory.close()


@pytest.fixture(scope="module")
def repo_svc(stack: Stack) -> Iterator[credentials_pb2_grpc.CredentialServiceStub]:
    """repo-svc's CredentialService, straight at the address the stack publishes."""
    state = stack.data.read_state()
    assert state is not None
    with grpc.insecure_channel(state["processes"]["repo-svc"]["address"]) as channel:
        yield credentials_pb2_grpc.CredentialServiceStub(channel)


def _signed(stack: Stack, signer: str, key: bytes | None = None) -> tuple[tuple[str, str]]:
    key = key or load_internal_key("", stack.data.internal_key)
    return CallerAssertions(key, signer).metadata(ADMIN, "repo-svc")


def _post(stack: Stack, token: str, body: dict[str, str]) -> tuple[int, str]:
    connection = http.client.HTTPConnection("127.0.0.1", urlsplit(stack.http_url).port, timeout=30)
    try:
        connection.request("POST", f"/api/{OPEN}", body=json.dumps(body),
                           headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
        reply = connection.getresponse()
        return reply.status, reply.read().decode(errors="replace")
    finally:
        connection.close()


@pytest.mark.parametrize(("who", "owner", "name"), [("admin", "admin", "hpc-key"),
                                                     ("mallory", "admin", "hpc-key"),
                                                     ("mallory", "mallory", "my-key")])
def test_no_user_opens_a_secret_through_the_gateways_grpc(stack: Stack, mallory_token: str, keys: None,
                                                          who: str, owner: str, name: str) -> None:
    client = stack.client(stack.admin_token() if who == "admin" else mallory_token)
    try:
        with pytest.raises(ClientError) as refused:
            client.call(client.saved_credentials.OpenCredential,
                        pb.OpenCredentialRequest(owner=owner, name=name))
    finally:
        client.close()
    assert refused.value.code == "PERMISSION_DENIED" and "not a public method" in refused.value.message
    assert KEY_BODY not in str(refused.value)


@pytest.mark.parametrize("who", ["admin", "mallory"])
def test_no_user_opens_a_secret_through_the_http_api(stack: Stack, mallory_token: str, keys: None,
                                                     who: str) -> None:
    token = stack.admin_token() if who == "admin" else mallory_token
    status, body = _post(stack, token, {"owner": "admin", "name": "hpc-key"})
    assert status == 403 and json.loads(body)["code"] == "PERMISSION_DENIED"
    assert KEY_BODY not in body


def test_a_direct_call_signed_by_the_gateway_is_refused(
        stack: Stack, keys: None, repo_svc: credentials_pb2_grpc.CredentialServiceStub) -> None:
    """What the gateway signs for an operator does not open a secret at repo-svc."""
    with pytest.raises(grpc.RpcError) as refused:
        repo_svc.OpenCredential(pb.OpenCredentialRequest(owner="admin", name="hpc-key"),
                                metadata=_signed(stack, "gateway"), timeout=10)
    assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert "only run-svc" in (refused.value.details() or "")
    assert KEY_BODY not in (refused.value.details() or "")


def test_claiming_to_be_run_svc_without_the_platforms_key_is_refused(
        stack: Stack, keys: None, repo_svc: credentials_pb2_grpc.CredentialServiceStub) -> None:
    with pytest.raises(grpc.RpcError) as refused:
        repo_svc.OpenCredential(pb.OpenCredentialRequest(owner="admin", name="hpc-key"),
                                metadata=_signed(stack, "run-svc", new_key()), timeout=10)
    assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED


def test_run_svc_opens_it(stack: Stack, keys: None,
                          repo_svc: credentials_pb2_grpc.CredentialServiceStub) -> None:
    """The control: the refusals above reached the method; run-svc's own assertion opens the key."""
    opened = repo_svc.OpenCredential(pb.OpenCredentialRequest(owner="admin", name="hpc-key"),
                                     metadata=_signed(stack, "run-svc"), timeout=10)
    assert (opened.secret, opened.credential.name, opened.credential.owner) == (KEY, "hpc-key", "admin")
    assert opened.credential.type == pb.CREDENTIAL_TYPE_SSH_KEY


def test_serving_svc_opens_it(stack: Stack, keys: None,
                              repo_svc: credentials_pb2_grpc.CredentialServiceStub) -> None:
    """The control for serving-svc, which reads a Kubernetes cluster's kubeconfig to reach its KServe."""
    opened = repo_svc.OpenCredential(pb.OpenCredentialRequest(owner="admin", name="hpc-key"),
                                     metadata=_signed(stack, "serving-svc"), timeout=10)
    assert (opened.secret, opened.credential.name) == (KEY, "hpc-key")


def test_another_service_is_refused(stack: Stack, keys: None,
                                    repo_svc: credentials_pb2_grpc.CredentialServiceStub) -> None:
    with pytest.raises(grpc.RpcError) as refused:
        repo_svc.OpenCredential(pb.OpenCredentialRequest(owner="admin", name="hpc-key"),
                                metadata=_signed(stack, "lineage-svc"), timeout=10)
    assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert KEY_BODY not in (refused.value.details() or "")


def test_no_serving_reply_can_carry_a_secret() -> None:
    """serving-svc opens a cluster's kubeconfig for itself: none of the replies its API gives a user has a
    field that could hand a credential's secret (or the kubeconfig) back."""
    def fields(message: Descriptor, seen: set[str]) -> Iterator[str]:
        if message.full_name in seen:
            return
        seen.add(message.full_name)
        for found in message.fields:
            yield found.name
            if found.message_type is not None:
                yield from fields(found.message_type, seen)

    service = serving_pb2.DESCRIPTOR.services_by_name["ServingService"]
    names = {name for method in service.methods for name in fields(method.output_type, set())}
    names.discard("next_page_token")  # a list's cursor
    assert names and not {n for n in names if any(w in n for w in ("secret", "kubeconfig", "credential",
                                                                    "password", "token"))}

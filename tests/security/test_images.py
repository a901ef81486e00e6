"""Attacks on the image catalog: a user deletes someone else's image, makes a private image that
pulls with someone else's registry credential, or deletes a standard image. Each is refused and
changes nothing; the owner and an operator still may."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from shipyard.client.connection import Client, ClientError
from shipyard.contracts.repo.v1 import credentials_pb2 as cred
from shipyard.contracts.repo.v1 import images_pb2 as pb
from shipyard.local.harness import Stack
from tests.support.users import signed_in

URL = "registry.example.org/team/img:1"


def _names(client: Client) -> list[str]:
    return [i.name for i in client.call(client.images.ListImages, pb.ListImagesRequest()).images]


@pytest.fixture(scope="module")
def alice(stack: Stack, admin: Client) -> Iterator[Client]:
    """Alice, with a registry credential and an image of hers."""
    client = signed_in(stack, admin, "alice")
    client.call(client.saved_credentials.SaveCredential, cred.SaveCredentialRequest(
        credential=cred.Credential(name="reg", type=cred.CREDENTIAL_TYPE_PASSWORD,
                                   host="registry.example.org", username="alice"),
        secret="her-registry-password"))
    client.call(client.images.AddImage, pb.AddImageRequest(image=pb.Image(name="alices", url=URL)))
    yield client
    client.close()


@pytest.fixture(scope="module")
def bob(stack: Stack, admin: Client) -> Iterator[Client]:
    client = signed_in(stack, admin, "bob")
    yield client
    client.close()


def _refused(client: Client, method: object, request: object) -> ClientError:
    with pytest.raises(ClientError) as caught:
        client.call(method, request)  # type: ignore[arg-type]
    return caught.value


def test_a_user_cannot_delete_someone_elses_image(alice: Client, bob: Client, admin: Client) -> None:
    error = _refused(bob, bob.images.DeleteImage, pb.DeleteImageRequest(name="alices"))
    assert error.code == "PERMISSION_DENIED" and "belongs to 'alice'" in error.message
    assert "alices" in _names(bob)
    alice.call(alice.images.AddImage, pb.AddImageRequest(image=pb.Image(name="alices-2", url=URL)))
    admin.call(admin.images.DeleteImage, pb.DeleteImageRequest(name="alices-2"))  # an operator may
    assert "alices-2" not in _names(alice)


def test_a_private_image_cannot_pull_with_someone_elses_credential(alice: Client, bob: Client) -> None:
    stolen = pb.Image(name="bobs-private", url=URL, private=True, credential="reg")
    error = _refused(bob, bob.images.AddImage, pb.AddImageRequest(image=stolen))
    assert error.code == "NOT_FOUND" and "credential 'reg' not found" in error.message
    assert "bobs-private" not in _names(bob)
    error = _refused(bob, bob.images.AddImage, pb.AddImageRequest(image=pb.Image(name="bobs", url=URL,
                                                                                 private=True)))
    assert (error.code, error.field) == ("INVALID_ARGUMENT", "image.credential")
    # Alice's own credential pulls her private image; nothing of the secret comes back.
    mine = alice.call(alice.images.AddImage, pb.AddImageRequest(image=pb.Image(
        name="alices-private", url=URL, private=True, credential="reg")))
    assert (mine.private, mine.credential, mine.owner) == (True, "reg", "alice")
    assert "her-registry-password" not in str(mine)


def test_nobody_deletes_a_standard_image(bob: Client, admin: Client) -> None:
    for client in (bob, admin):
        error = _refused(client, client.images.DeleteImage, pb.DeleteImageRequest(name="sklearn-1.5"))
        assert error.code == "FAILED_PRECONDITION" and "come with the platform" in error.message
    standard = bob.call(bob.images.GetImage, pb.GetImageRequest(name="sklearn-1.5"))
    assert standard.source == pb.IMAGE_SOURCE_STANDARD


def test_a_user_cannot_take_over_a_name_already_in_the_catalog(alice: Client, bob: Client) -> None:
    for name in ("alices", "python"):
        error = _refused(bob, bob.images.AddImage, pb.AddImageRequest(image=pb.Image(
            name=name, url="evil.example.org/img:1")))
        assert error.code == "ALREADY_EXISTS"
    assert bob.call(bob.images.GetImage, pb.GetImageRequest(name="alices")).url == URL

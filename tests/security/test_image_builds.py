"""Attacks on image builds (run-svc's ImageBuildService): a production engineer, who may not run
code, builds an image; a user builds under the name of someone else's image to take it over in the
catalog, or under the name runs use to ask for a build of their code. Each is refused and nothing is
created; the catalog keeps the owner's image."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from shipyard.client.connection import Client, ClientError
from shipyard.contracts.gateway.v1 import gateway_pb2
from shipyard.contracts.repo.v1 import images_pb2, repos_pb2
from shipyard.contracts.run.v1 import builds_pb2 as pb
from shipyard.local.harness import Stack
from tests.support.users import signed_in


@pytest.fixture(scope="module")
def alice(stack: Stack, admin: Client) -> Iterator[Client]:
    """Alice, with an image of hers in the catalog."""
    client = signed_in(stack, admin, "alice-builds")
    client.call(client.images.AddImage, images_pb2.AddImageRequest(image=images_pb2.Image(
        name="alices-env", url="registry.example.org/alice/env:1")))
    yield client
    client.close()


def _refused(client: Client, name: str) -> ClientError:
    build = pb.ImageBuild(name=name, code="any-code")
    with pytest.raises(ClientError) as refused:
        client.call(client.builds.BuildImage, pb.BuildImageRequest(build=build))
    return refused.value


def _builds(client: Client) -> list[str]:
    return [b.name for b in client.call(client.builds.ListImageBuilds, pb.ListImageBuildsRequest()).builds]


def test_a_production_engineer_cannot_build_an_image(stack: Stack, admin: Client) -> None:
    paul = signed_in(stack, admin, "paul-builds", gateway_pb2.ROLE_PRODUCTION_ENGINEER)
    try:
        assert _refused(paul, "pauls-env").code == "PERMISSION_DENIED"
    finally:
        paul.close()
    assert "pauls-env" not in _builds(admin)


def test_a_build_cannot_take_someone_elses_image_name(stack: Stack, admin: Client, alice: Client) -> None:
    bob = signed_in(stack, admin, "bob-builds")
    try:
        admin.call(admin.repos.CreateRepo, repos_pb2.CreateRepoRequest(repo=repos_pb2.Repo(
            kind=repos_pb2.REPO_KIND_CODE, name="any-code",
            source=repos_pb2.Source(git=repos_pb2.GitSource(url="https://github.com/acme/any")))))
        taken = _refused(bob, "alices-env")
        assert (taken.code, taken.field) == ("ALREADY_EXISTS", "") and "alices-env" in taken.message
        reserved = _refused(bob, "build-from-code-repo")
        assert (reserved.code, reserved.field) == ("INVALID_ARGUMENT", "build.name")
    finally:
        bob.close()
    assert _builds(admin) == []
    image = admin.call(admin.images.GetImage, images_pb2.GetImageRequest(name="alices-env"))
    assert (image.owner, image.url) == ("alice-builds", "registry.example.org/alice/env:1")

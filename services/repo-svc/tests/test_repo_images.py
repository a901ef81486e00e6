"""The image catalog: validation naming the field, the standard images, users' images (added,
deleted by their owner or an operator), the image a run resolves to, and the events recorded."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import pytest
from repo_world import World, repo_world
from shipyard_repo.adapters.store import COLLECTIONS, RepoUnitOfWork
from shipyard_repo.app.images import Images
from shipyard_repo.domain.credentials import CredentialFields, CredentialType
from shipyard_repo.domain.images import Image, ImageSource, ImageStatus, check_image_url
from shipyard_repo.domain.standard_images import STANDARD_IMAGES

from shipyard.contracts.events.v1 import events_pb2
from shipyard.kit.environments import environment_digest, platform_python
from shipyard.kit.errors import (
    AlreadyExists,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    PermissionDenied,
)
from shipyard.kit.testing import ALICE, BOB, OPERATOR_CALLER, sqlite_store

TF = Image(name="tf-2.17", url="registry.example.org/ml/tf:2.17", description="TensorFlow 2.17",
           framework="tensorflow", framework_version="2.17", requirements=("tensorflow==2.17.*", "pandas"))


@pytest.fixture(params=["memory", "sqlite"])
async def world(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[World]:
    """repo-svc on the kit's memory store and on the real SQLite adapter (MongoDB runs the same code)."""
    if request.param == "memory":
        yield await repo_world(tmp_path)
        return
    async with sqlite_store(tmp_path / "repo.db", COLLECTIONS) as store:
        yield await repo_world(tmp_path, store=store)


@pytest.fixture
def images(world: World) -> Images:
    return world.app.images


@pytest.mark.parametrize("url", [
    "python:3.11-slim", "ubuntu", "tensorflow/tensorflow:2.17.0", "registry.example.org/ml/tf:2.17",
    "localhost:5000/team/img", "registry.example.org:8443/a/b/c:v1.0_rc-2",
    "ghcr.io/acme/img@sha256:" + "a" * 64, "ghcr.io/acme/img:1@sha256:" + "0" * 64, "my_org/my-img__x:latest",
])
def test_container_image_references_are_accepted(url: str) -> None:
    assert check_image_url("image.url", url) == url


@pytest.mark.parametrize(("url", "problem"), [
    ("", "must not be empty"),
    ("registry.example.org/ml/tf 2.17", "spaces"),
    ("registry.example.org/ML/tf:2.17", "lower case"),
    ("Tensorflow", "lower case"),
    ("https://registry.example.org/ml/tf:2.17", "without a scheme"),
    ("registry.example.org/ml/tf:", "not a container image reference"),
    ("registry.example.org//tf", "not a container image reference"),
    ("img@sha256:abc", "not a container image reference"),
    ("img:" + "t" * 200, "not a container image reference"),
])
def test_bad_urls_are_refused_naming_the_field(url: str, problem: str) -> None:
    with pytest.raises(InvalidArgument, match=problem) as caught:
        check_image_url("image.url", url)
    assert caught.value.field == "image.url"


@pytest.mark.parametrize(("change", "field", "problem"), [
    ({"name": ""}, "image.name", "must not be empty"),
    ({"name": "tf/2"}, "image.name", "'/'"),
    ({"name": "-tf"}, "image.name", "start with a letter or digit"),
    ({"name": "x" * 64}, "image.name", "at most 63"),
    ({"url": "Registry.example.org/ML"}, "image.url", "lower case"),
    ({"description": "d" * 1001}, "image.description", "at most 1000"),
    ({"framework": "caffe"}, "image.framework", "tensorflow, pytorch, sklearn, xgboost, custom"),
    ({"framework": "", "framework_version": "2.17"}, "image.framework_version", "needs a framework"),
    ({"framework_version": "2.17; rm -rf"}, "image.framework_version", "a version such as"),
    ({"private": True}, "image.credential", "a private image needs --credential"),
    ({"credential": "reg"}, "image.credential", "only a private image"),
    ({"private": True, "credential": "a b"}, "image.credential", "letters, digits"),
    ({"python": "3"}, "image.python", "major.minor"),
    ({"requirements": ("pandas", "not a requirement!")}, "image.requirements[1]", "pip can read"),
    ({"requirements": ("--index-url http://evil",)}, "image.requirements[0]", "options are not allowed"),
])
async def test_bad_input_is_refused_naming_the_field_and_nothing_is_created(
        images: Images, world: World, change: dict[str, object], field: str, problem: str) -> None:
    with pytest.raises(InvalidArgument, match=problem) as caught:
        await images.add(ALICE, replace(TF, **change))  # type: ignore[arg-type]
    assert caught.value.field == field
    assert await world.documents("images") == [] and world.units.published == []


async def test_an_added_image_is_stored_with_its_owner_digest_and_event(images: Images, world: World) -> None:
    given = replace(TF, framework="tf", requirements=("tensorflow==2.17.*  # the framework", "", "pandas"),
                    source=ImageSource.STANDARD, owner="mallory", status=ImageStatus.FAILED)
    added = await images.add(ALICE, given)
    # The output-only fields are the service's, whatever the caller sent.
    assert (added.owner, added.source, added.status, added.framework) == (
        "alice", ImageSource.REGISTRY, ImageStatus.READY, "tensorflow")
    assert added.requirements == ("tensorflow==2.17.*", "pandas")
    assert added.digest == environment_digest("", ("tensorflow==2.17.*", "pandas"))
    assert added.create_time is not None and added.revision == 1
    assert await images.get("tf-2.17") == added
    [event] = world.units.messages(events_pb2.ImageAdded)
    assert (event.image.name, event.image.owner, event.image.digest, event.actor.user) == (
        "tf-2.17", "alice", added.digest, "alice")
    assert world.units.published[0].subject == "images/tf-2.17"


async def test_a_name_is_taken_once_standard_or_not(images: Images, world: World) -> None:
    await images.add(ALICE, TF)
    with pytest.raises(AlreadyExists, match=r"'tf-2\.17'"):
        await images.add(BOB, replace(TF, url="other.org/tf"))
    with pytest.raises(AlreadyExists, match="standard image"):
        await images.add(ALICE, replace(TF, name="sklearn-1.5"))
    assert len(await world.documents("images")) == 1


async def test_two_users_adding_one_name_at_once_get_one_image(images: Images, world: World) -> None:
    async def add_behind_the_check(uow: RepoUnitOfWork) -> None:
        await uow.images.add(replace(TF, owner="alice"))  # committed between bob's check and his write

    await world.write(add_behind_the_check)
    async with world.units() as uow:
        with pytest.raises(AlreadyExists, match=r"^an image named 'tf-2\.17' exists already$"):
            await uow.images.add(replace(TF, owner="bob"))
    assert [d["owner"] for d in await world.documents("images")] == ["alice"]


async def test_the_standard_images_are_listed_first_and_cannot_be_deleted(images: Images) -> None:
    await images.add(BOB, replace(TF, name="b-img"))
    await images.add(ALICE, replace(TF, name="a-img", framework="sklearn", framework_version="1.5"))
    listed = await images.list()
    assert [i.name for i in listed] == [*(s.name for s in STANDARD_IMAGES), "a-img", "b-img"]
    assert {"python", "sklearn-1.5", "sklearn-1.4", "sklearn-1.3", "tensorflow-2.17", "tensorflow-2.16",
            "pytorch-2.5", "pytorch-2.4", "xgboost-2.1"} <= {i.name for i in listed}
    assert [i.name for i in await images.list("sklearn")] == [
        "sklearn-1.9", "sklearn-1.8", "sklearn-1.5", "sklearn-1.4", "sklearn-1.3", "a-img"]
    with pytest.raises(InvalidArgument, match="framework"):
        await images.list("caffe")
    for caller in (ALICE, OPERATOR_CALLER):
        with pytest.raises(FailedPrecondition, match="standard images come with the platform"):
            await images.delete(caller, "sklearn-1.5")
    assert (await images.get("sklearn-1.5")).standard


def test_the_standard_images_are_what_the_platform_promises() -> None:
    by_name = {image.name: image for image in STANDARD_IMAGES}
    python = by_name["python"]
    assert python.requirements == () and python.framework == "custom"
    assert python.url == f"python:{platform_python()}-slim"
    assert by_name["sklearn-1.3"].requirements[:2] == ("scikit-learn==1.3.*", "numpy<2")
    assert by_name["tensorflow-2.17"].url == "tensorflow/tensorflow:2.17.0"
    assert "torch==2.5.*" in by_name["pytorch-2.5"].requirements
    for image in STANDARD_IMAGES:
        assert image.checked() == image  # each passes the rules users' images pass
        assert image.description and image.owner == "" and image.source is ImageSource.STANDARD


async def test_only_the_owner_or_an_operator_deletes_an_image(images: Images, world: World) -> None:
    await images.add(ALICE, TF)
    with pytest.raises(PermissionDenied, match="belongs to 'alice'"):
        await images.delete(BOB, "tf-2.17")
    await images.delete(ALICE, "tf-2.17")
    await images.add(ALICE, TF)
    await images.delete(OPERATOR_CALLER, "tf-2.17")
    assert await world.documents("images") == []
    with pytest.raises(NotFound, match=r"image 'tf-2\.17' not found"):
        await images.delete(ALICE, "tf-2.17")
    deleted = world.units.messages(events_pb2.ImageDeleted)
    assert [(e.name, e.url, e.actor.user) for e in deleted] == [
        ("tf-2.17", TF.url, "alice"), ("tf-2.17", TF.url, "olga")]


async def test_a_private_image_needs_a_registry_credential_of_the_callers(
        images: Images, world: World) -> None:
    credentials = world.app.credentials
    await credentials.save(BOB, CredentialFields("reg", CredentialType.PASSWORD, "registry.example.org", "b"),
                           "pw")
    private = replace(TF, name="private-img", private=True, credential="reg")
    with pytest.raises(NotFound, match="credential 'reg' not found"):
        await images.add(ALICE, private)  # bob's credential is not alice's
    await credentials.save(ALICE, CredentialFields("key", CredentialType.SSH_KEY, "github.com"), _ssh_key())
    with pytest.raises(InvalidArgument, match="password or token") as caught:
        await images.add(ALICE, replace(private, credential="key"))
    assert caught.value.field == "image.credential"
    assert await world.documents("images") == []
    added = await images.add(BOB, private)
    assert (added.private, added.credential, added.owner) == (True, "reg", "bob")


def _ssh_key() -> str:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ed25519

    key = ed25519.Ed25519PrivateKey.generate()
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH,
                             serialization.NoEncryption()).decode()


@pytest.mark.parametrize(("name", "framework", "version", "resolved"), [
    ("", "", "", "python"),
    ("sklearn-1.4", "", "", "sklearn-1.4"),
    ("tf-2.17", "", "", "tf-2.17"),
    ("tf-2.17", "pytorch", "2.4", "tf-2.17"),  # a name decides
    ("", "sklearn", "", "sklearn-1.9"),
    ("", "sklearn", "1.5", "sklearn-1.5"),
    ("", "sklearn", "1.5.2", "sklearn-1.5"),
    ("", "sklearn", "1.3", "sklearn-1.3"),
    ("", "scikit-learn", "1.4", "sklearn-1.4"),
    ("", "tensorflow", "2", "tensorflow-2.21"),
    ("", "tensorflow", "2.16.1", "tensorflow-2.16"),
    ("", "pytorch", "", "pytorch-2.5"),
    ("", "xgboost", "2.1", "xgboost-2.1"),
    ("", "custom", "", "python"),
])
async def test_resolve_by_name_framework_and_version(images: Images, name: str, framework: str, version: str,
                                                     resolved: str) -> None:
    await images.add(ALICE, TF)
    assert (await images.resolve(name, framework, version)).name == resolved


@pytest.mark.parametrize(("name", "framework", "version", "problem"), [
    ("ghost", "", "", "image 'ghost' not found"),
    ("", "sklearn", "0.24",
     r"no standard image of framework 'sklearn' 0\.24 \(versions there are: 1\.9, 1\.8, 1\.5, 1\.4, 1\.3\)"),
    ("", "sklearn", "1.55", "versions there are"),
    ("", "caffe", "", r"framework 'caffe' \(frameworks there are: tensorflow, pytorch, sklearn"),
])
async def test_resolving_what_is_not_there_names_it_and_what_there_is(
        images: Images, name: str, framework: str, version: str, problem: str) -> None:
    with pytest.raises(NotFound, match=problem):
        await images.resolve(name, framework, version)


async def test_a_version_without_a_framework_is_refused(images: Images) -> None:
    with pytest.raises(InvalidArgument, match="needs a framework") as caught:
        await images.resolve("", "", "1.5")
    assert caught.value.field == "framework"


async def test_an_image_that_is_not_ready_is_not_resolved(images: Images, world: World) -> None:
    building = replace(TF, name="xgb", source=ImageSource.CODE_REPO, status=ImageStatus.BUILDING,
                       owner="alice", code="churn", commit="abc")
    failed = replace(building, name="broken", status=ImageStatus.FAILED,
                     status_reason="no such package 'nope'")

    async def store(uow: RepoUnitOfWork) -> None:
        for image in (building, failed):
            await uow.images.add(image)

    await world.write(store)
    with pytest.raises(FailedPrecondition, match=r"'xgb' is not ready \(it is building"):
        await images.resolve("xgb", "", "")
    with pytest.raises(FailedPrecondition, match="failed: no such package 'nope'"):
        await images.resolve("broken", "", "")
    assert (await images.get("xgb")).status is ImageStatus.BUILDING  # still shown


async def test_a_framework_without_requirements_gets_the_standard_set_of_its_version(images: Images) -> None:
    added = await images.add(ALICE, Image(name="tf-team", url="registry.example.org/ml/tf:2.17",
                                          framework="tensorflow", framework_version="2.17"))
    assert added.requirements == (await images.get("tensorflow-2.17")).requirements
    own = await images.add(ALICE, Image(name="tf-own", url="registry.example.org/ml/tf:2.17",
                                        framework="tensorflow", framework_version="2.17",
                                        requirements=("tensorflow==2.17.1",)))
    assert own.requirements == ("tensorflow==2.17.1",)
    with pytest.raises(InvalidArgument, match=r"versions there are.*own requirements"):
        await images.add(ALICE, Image(name="tf-old", url="registry.example.org/ml/tf:1.15",
                                      framework="tensorflow", framework_version="1.15"))

"""The kit's FakeRepoClient, which run-svc's and serving-svc's unit tests read repo-svc through, answers
as the kit's real RepoClient does against repo-svc itself (composed as production composes it, served
over gRPC): the same repos set up on both, the same calls, the same answers and errors. A fake that
drifts from repo-svc fails here."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from repo_world import repo_world
from shipyard_repo.app.imports import FetchFailed
from shipyard_repo.app.ports import SourceFetcher
from shipyard_repo.app.versions import NewVersion
from shipyard_repo.domain.images import Image
from shipyard_repo.domain.repos import RepoFields, Versioning
from shipyard_repo.domain.sources import GitSource, HostPathSource, NoSource, RepoKind, Source, UploadSource
from shipyard_repo.domain.standard_images import STANDARD_IMAGES

from shipyard.contracts.repo.v1 import images_pb2_grpc, repos_pb2, repos_pb2_grpc
from shipyard.kit.assertions import CallerAssertions, new_key
from shipyard.kit.caller import Caller
from shipyard.kit.clients.repos import REPO_SVC, ImageChoice, RepoClient
from shipyard.kit.errors import PermissionDenied, ShipyardError
from shipyard.kit.grpcio import Authentication, assertion_authenticator, new_server
from shipyard.kit.manifest import Manifest, ManifestEntry
from shipyard.kit.testing import ALICE, BOB, OPERATOR_CALLER, FakeRepoClient

SHA = "c0ffee" * 6 + "ab"
WEIGHTS = Manifest((ManifestEntry("model.pkl", 7, hashlib.sha256(b"weights").hexdigest(), 0o644),))
NOT_STORED = "ab" * 32
RUN_SVC = "run-svc"  # who signs the client's assertions: repo-svc takes a run's facts from it alone
Call = Callable[[Any], Awaitable[Any]]

# What a run-svc or serving-svc asks, in words: each is asked of both clients.
CALLS: dict[str, Call] = {
    "the latest version": lambda c: c.version(ALICE, "dataset", "digits", 0),
    "an older version": lambda c: c.version(BOB, "dataset", "digits", 1),
    "a version that is not there": lambda c: c.version(ALICE, "dataset", "digits", 9),
    "a version of a repo that is not there": lambda c: c.version(ALICE, "dataset", "ghost", 0),
    "the latest of a repo with no versions yet": lambda c: c.version(ALICE, "dataset", "empty", 0),
    "a version of an unversioned repo": lambda c: c.version(ALICE, "dataset", "logs", 0),
    "a version of a repo with no name": lambda c: c.version(ALICE, "model", "", 0),
    "a negative version": lambda c: c.version(ALICE, "dataset", "digits", -1),
    "a version of a kind that keeps none": lambda c: c.version(ALICE, "code", "train", 0),
    "the owner's right to write": lambda c: c.check_write(ALICE, "model", "mnist"),
    "an operator's right to write": lambda c: c.check_write(OPERATOR_CALLER, "model", "mnist"),
    "someone else's right to write": lambda c: c.check_write(BOB, "model", "mnist"),
    "the right to write an unversioned repo": lambda c: c.check_write(ALICE, "dataset", "logs"),
    "the right to write a repo that is not there": lambda c: c.check_write(ALICE, "model", "ghost"),
    "the latest commit": lambda c: c.snapshot_code(ALICE, "train", ""),
    "a commit by the start of its sha": lambda c: c.snapshot_code(ALICE, "train", SHA[:8]),
    "a commit that is not there": lambda c: c.snapshot_code(ALICE, "train", "ffff"),
    "a code repo that is not there": lambda c: c.snapshot_code(ALICE, "ghost", ""),
    "the image of a run that names none": lambda c: c.resolve_image(ALICE, "", "", ""),
    "an image by its name": lambda c: c.resolve_image(BOB, "xgb", "", ""),
    "an image that is not there": lambda c: c.resolve_image(ALICE, "ghost", "", ""),
    "the newest image of a framework": lambda c: c.resolve_image(ALICE, "", "sklearn", ""),
    "a framework's image by its version": lambda c: c.resolve_image(ALICE, "", "sklearn", "1.4"),
    "a framework's image by a more precise version": lambda c: c.resolve_image(ALICE, "", "sklearn", "1.5.2"),
    "a framework's image by a less precise version": lambda c: c.resolve_image(ALICE, "", "tensorflow", "2"),
    "a version a run produced": lambda c: c.create_version(
        ALICE, "model", "mnist", WEIGHTS.digest, produced_by_run="run-1", produced_by_run_name="train-1",
        metrics={"accuracy": 0.93}, params={"lr": "0.1"}, message="registered from run train-1"),
    "a version made by an operator": lambda c: c.create_version(OPERATOR_CALLER, "model", "mnist",
                                                                WEIGHTS.digest, produced_by_run="run-2"),
    "a version of someone else's repo": lambda c: c.create_version(BOB, "model", "mnist", WEIGHTS.digest,
                                                                   produced_by_run="run-1"),
    "a version of a manifest not stored": lambda c: c.create_version(ALICE, "model", "mnist", NOT_STORED),
    "a version of a malformed manifest digest": lambda c: c.create_version(ALICE, "model", "mnist", "sha1"),
    "a version made in a repo that is not there": lambda c: c.create_version(ALICE, "model", "ghost",
                                                                             WEIGHTS.digest),
    "a version of an unversioned repo made": lambda c: c.create_version(ALICE, "dataset", "logs",
                                                                        WEIGHTS.digest),
    "a version after one that is not the latest": lambda c: c.create_version(
        ALICE, "model", "mnist", WEIGHTS.digest, parent_version=7),
    "a version after the latest": lambda c: c.create_version(ALICE, "model", "mnist", WEIGHTS.digest,
                                                             parent_version=1),
    "a version with a message of control characters": lambda c: c.create_version(
        ALICE, "model", "mnist", WEIGHTS.digest, message="a\x00b"),
    "a version of a kind that keeps none made": lambda c: c.create_version(ALICE, "code", "train",
                                                                           WEIGHTS.digest),
}
XGB = Image(name="xgb", url="registry.example.org/team/xgb:1", requirements=("xgboost==2.1.*",))


class OneCommit(SourceFetcher):
    """A git remote holding one commit, SHA (refusing any other as git would, in words of its own)."""

    async def fetch(self, source: Source, into: Path, secret: str | None, username: str = "") -> str:
        assert isinstance(source, GitSource)
        if not SHA.startswith(source.commit):
            raise FetchFailed(f"the repository has no commit {source.commit!r}")
        (into / "train.py").write_text("print('hi')\n")
        return SHA


@pytest.fixture
async def served(tmp_path: Path) -> AsyncIterator[tuple[str, bytes]]:
    """repo-svc with the repos of ``_fake``, served over gRPC: its address and the internal key."""
    world = await repo_world(tmp_path, fetcher=OneCommit())
    repos, versions = world.app.repos, world.app.versions
    await repos.create(ALICE, RepoFields(kind=RepoKind.DATASET, name="digits", source=UploadSource("d.zip")))
    for number in (1, 2):
        data = f"version {number}".encode()
        digest = world.manifests.upload(Manifest((ManifestEntry(
            "data.csv", len(data), hashlib.sha256(data).hexdigest(), 0o644),)))
        await versions.create(ALICE, RepoKind.DATASET, "digits", NewVersion(digest))
    await repos.create(ALICE, RepoFields(kind=RepoKind.DATASET, name="empty", source=UploadSource("e.zip")))
    await repos.create(ALICE, RepoFields(kind=RepoKind.DATASET, name="logs", versioning=Versioning.NONE,
                                         source=HostPathSource("/data/logs")))
    await repos.create(ALICE, RepoFields(kind=RepoKind.MODEL, name="mnist", source=NoSource()))
    await repos.create(ALICE, RepoFields(kind=RepoKind.CODE, name="train", versioning=Versioning.NONE,
                                         source=GitSource("https://github.com/acme/train.git")))
    await world.app.images.add(ALICE, XGB)
    world.manifests.upload(WEIGHTS)
    key = new_key()
    server = new_server(tracing=False, authentication=Authentication(
        assertion_authenticator(CallerAssertions(key, REPO_SVC))))
    repos_pb2_grpc.add_RepoServiceServicer_to_server(world.app.repo_servicer, server)
    images_pb2_grpc.add_ImageServiceServicer_to_server(world.app.image_servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        yield f"127.0.0.1:{port}", key
    finally:
        await server.stop(None)


@pytest.fixture
async def real(served: tuple[str, bytes]) -> AsyncIterator[RepoClient]:
    """The real client of repo-svc, as run-svc holds it."""
    address, key = served
    client = RepoClient(address, CallerAssertions(key, RUN_SVC))
    try:
        yield client
    finally:
        await client.close()


def _fake() -> FakeRepoClient:
    """The same repos, in the fake."""
    fake = FakeRepoClient()
    fake.add("dataset", "digits", latest=2)
    fake.add("dataset", "empty", latest=0)
    fake.add_unversioned("dataset", "logs")
    fake.add("model", "mnist")
    fake.add_code("train", SHA)
    for image in STANDARD_IMAGES:
        fake.add_image(image.name, image.requirements, image.python, image.framework, image.framework_version,
                       image.url)
    fake.add_image(XGB.name, XGB.requirements, url=XGB.url)
    fake.add_manifest(WEIGHTS.digest, WEIGHTS.file_count, WEIGHTS.size)
    return fake


async def _answer(call: Call, client: Any) -> tuple[str, Any]:
    """What a call answered, without what differs by design (ids, digests): the version's number,
    the snapshot's commit, that a write is allowed, the image chosen (all of it); or the error's kind and
    message."""
    try:
        found = await call(client)
    except ShipyardError as exc:
        return type(exc).__name__, exc.message
    if isinstance(found, str):
        return "allowed", bool(found)
    if isinstance(found, ImageChoice):
        return "image", found
    if isinstance(found, repos_pb2.Version):  # all but its time and the repo's id
        found.ClearField("create_time")
        found.ClearField("repo_id")
        return "version", found
    return "found", getattr(found, "number", None) or found.commit


@pytest.mark.parametrize("asked", CALLS)
async def test_the_fake_answers_as_repo_svc_does(real: RepoClient, asked: str) -> None:
    fake = _fake()
    assert await _answer(CALLS[asked], fake) == await _answer(CALLS[asked], real)
    assert len(fake.calls) == 1  # and kept the call


async def test_the_fake_keeps_each_call_with_its_caller() -> None:
    fake = _fake()
    await fake.version(ALICE, "dataset", "digits", 1)
    await fake.check_write(Caller("ops", frozenset({"operator"})), "model", "mnist")
    await fake.snapshot_code(BOB, "train", "")
    assert fake.calls == [("version", "alice", "dataset", "digits", 1),
                          ("check_write", "ops", "model", "mnist", 0),
                          ("snapshot_code", "bob", "code", "train", 0)]


async def test_the_fake_reads_back_the_version_it_made_and_answers_a_retry_with_it() -> None:
    fake = _fake()
    made = await fake.create_version(ALICE, "model", "mnist", WEIGHTS.digest, request_id="r1")
    again = await fake.create_version(ALICE, "model", "mnist", WEIGHTS.digest, request_id="r1")
    assert again == made and fake.created == [made]
    assert (await fake.version(ALICE, "model", "mnist", 0)).number == made.number == 2


async def test_repo_svc_takes_a_runs_facts_from_run_svc_alone(served: tuple[str, bytes],
                                                                real: RepoClient) -> None:
    recorded = await real.create_version(ALICE, "model", "mnist", WEIGHTS.digest, produced_by_run="run-1",
                                         produced_by_run_name="train-1", metrics={"accuracy": 0.93},
                                         params={"lr": "0.1"})
    assert (recorded.number, recorded.produced_by_run, dict(recorded.run_names)) == (2, "run-1",
                                                                                   {"run-1": "train-1"})
    assert (dict(recorded.metrics), dict(recorded.params), recorded.owner) == ({"accuracy": 0.93},
                                                                               {"lr": "0.1"}, "alice")
    address, key = served
    gateway = RepoClient(address, CallerAssertions(key, "gateway"))
    try:
        with pytest.raises(PermissionDenied, match="produced_by_run: only run-svc records what a run"):
            await gateway.create_version(ALICE, "model", "mnist", WEIGHTS.digest, produced_by_run="run-1")
        # Without a run, a user's version is made as ever; the run's other facts are not taken from them.
        made = await gateway.create_version(ALICE, "model", "mnist", WEIGHTS.digest,
                                            produced_by_run_name="train-1", metrics={"accuracy": 1.0},
                                            params={"lr": "9"})
    finally:
        await gateway.close()
    assert made.number == 3
    assert (made.produced_by_run, dict(made.metrics), dict(made.params), dict(made.run_names)) == (
        "", {}, {}, {})

"""Labels of repos and versions, and aliases of versions (MLflow's registry tags and aliases:
app/labels.py), composed as production composes them, on the real store adapters."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import pytest
from repo_world import World, repo_world
from shipyard_repo.adapters.store import COLLECTIONS, StoredRepos, StoredVersions
from shipyard_repo.app.labels import Labels
from shipyard_repo.app.messages import repo_to_proto, version_to_proto
from shipyard_repo.app.ports import RepoFilter
from shipyard_repo.app.repos import Repos
from shipyard_repo.app.versions import NewVersion, Versions
from shipyard_repo.domain.labels import LABEL_VALUE_MAX
from shipyard_repo.domain.repos import RepoFields
from shipyard_repo.domain.sources import HostPathSource, NoSource, RepoKind, Versioning

from shipyard.contracts.events.v1 import events_pb2
from shipyard.contracts.repo.v1 import repos_pb2, repos_pb2_grpc
from shipyard.kit.assertions import CallerAssertions, new_key
from shipyard.kit.clients.repos import REPO_SVC
from shipyard.kit.errors import FailedPrecondition, InvalidArgument, NotFound, PermissionDenied
from shipyard.kit.grpcio import Authentication, assertion_authenticator, new_server
from shipyard.kit.manifest import Manifest, ManifestEntry
from shipyard.kit.testing import ALICE, BOB, OPERATOR_CALLER, sqlite_store

MODEL = RepoKind.MODEL


@dataclass
class Wired:
    labels: Labels
    repos: Repos
    versions: Versions
    world: World

    async def model(self, name: str = "mnist", versions: int = 3) -> None:
        """A model owned by alice with ``versions`` versions (the first the empty placeholder)."""
        await self.repos.create(ALICE, RepoFields(kind=MODEL, name=name, source=NoSource()))
        for number in range(2, versions + 1):
            data = f"weights {number}".encode()
            digest = self.world.manifests.upload(Manifest((ManifestEntry(
                "model.pkl", len(data), hashlib.sha256(data).hexdigest(), 0o644),)))
            await self.versions.create(ALICE, MODEL, name, NewVersion(digest))

    def updates(self) -> list[tuple[list[str], dict[str, str], dict[str, int]]]:
        """The RepoUpdated events published: changed fields, and the repo's labels and aliases."""
        return [(list(e.changed_fields), dict(e.repo.labels), dict(e.repo.aliases))
                for e in self.world.units.messages(events_pb2.RepoUpdated)]


async def _wired(world: World) -> Wired:
    app = world.app
    wired = Wired(app.labels, app.repos, app.versions, world)
    await wired.model()
    return wired


@pytest.fixture
async def wired(tmp_path: Path) -> Wired:
    return await _wired(await repo_world(tmp_path))


# --- repo labels -------------------------------------------------------------------------


async def test_labels_are_set_replaced_and_removed_and_every_read_shows_them(wired: Wired) -> None:
    await wired.labels.label_repo(ALICE, MODEL, "mnist", {"team": "vision", "task": "digits"}, [])
    repo = await wired.labels.label_repo(ALICE, MODEL, "mnist", {"team": "ocr"}, ["task"])

    assert repo.labels == {"team": "ocr"}
    assert (await wired.repos.get(MODEL, "mnist")).labels == {"team": "ocr"}
    listed, _ = await wired.repos.list_page(RepoFilter(kind=MODEL), 10, "")
    assert listed[0].labels == {"team": "ocr"}
    assert dict(repo_to_proto(repo).labels) == {"team": "ocr"}
    assert wired.updates() == [(["labels"], {"team": "vision", "task": "digits"}, {}),
                               (["labels"], {"team": "ocr"}, {})]


async def test_a_label_change_that_changes_nothing_publishes_nothing(wired: Wired) -> None:
    await wired.labels.label_repo(ALICE, MODEL, "mnist", {"team": "ocr"}, [])
    again = await wired.labels.label_repo(ALICE, MODEL, "mnist", {"team": "ocr"}, ["not-there"])
    assert again.labels == {"team": "ocr"}
    assert len(wired.updates()) == 1


async def test_only_who_may_update_the_repo_labels_it_or_its_versions_or_names_aliases(wired: Wired) -> None:
    with pytest.raises(PermissionDenied, match="belongs to 'alice'"):
        await wired.labels.label_repo(BOB, MODEL, "mnist", {"team": "bob"}, [])
    with pytest.raises(PermissionDenied, match="belongs to 'alice'"):
        await wired.labels.label_version(BOB, MODEL, "mnist", 2, {"team": "bob"}, [])
    with pytest.raises(PermissionDenied, match="belongs to 'alice'"):
        await wired.labels.set_alias(BOB, MODEL, "mnist", "champion", 2)
    assert wired.updates() == []
    await wired.labels.label_repo(OPERATOR_CALLER, MODEL, "mnist", {"reviewed": "yes"}, [])
    await wired.labels.label_version(OPERATOR_CALLER, MODEL, "mnist", 2, {"reviewed": "yes"}, [])
    assert (await wired.labels.set_alias(OPERATOR_CALLER, MODEL, "mnist", "champion", 2)).aliases == {
        "champion": 2}


BAD_LABELS: dict[str, tuple[dict[str, str], list[str], str]] = {
    "an empty key": ({"": "x"}, [], "set"),
    "a key over 250 characters": ({"k" * 251: "x"}, [], "set"),
    "a key with a control character": ({"a\nb": "x"}, [], "set"),
    "a value over MLflow's limit": ({"k": "v" * (LABEL_VALUE_MAX + 1)}, [], "set['k']"),
    "a value with a control character": ({"k": "a\x00b"}, [], "set['k']"),
    "more than 100 labels": ({f"k{i}": "v" for i in range(101)}, [], "set"),
    "more than 256 KiB of labels": ({f"k{i}": "v" * 90_000 for i in range(3)}, [], "set"),
    "a key both set and removed": ({"k": "v"}, ["k"], "remove"),
    "an empty key to remove": ({}, [""], "remove"),
}


@pytest.mark.parametrize("case", BAD_LABELS)
async def test_bad_labels_are_invalid_naming_the_field_and_nothing_changes(wired: Wired, case: str) -> None:
    set_, remove, field = BAD_LABELS[case]
    with pytest.raises(InvalidArgument) as repo_error:
        await wired.labels.label_repo(ALICE, MODEL, "mnist", set_, remove)
    with pytest.raises(InvalidArgument) as version_error:
        await wired.labels.label_version(ALICE, MODEL, "mnist", 2, set_, remove)
    assert repo_error.value.field == version_error.value.field == field
    assert (await wired.repos.get(MODEL, "mnist")).labels == {}
    assert (await wired.versions.get(MODEL, "mnist", 2))[1].labels == {}


async def test_labels_up_to_the_limits_are_kept(wired: Wired) -> None:
    most = {f"k{i:03d}": "v" for i in range(99)} | {"k" * 250: "v" * 2000}
    assert len((await wired.labels.label_repo(ALICE, MODEL, "mnist", most, [])).labels) == 100
    big = {"note": "v" * LABEL_VALUE_MAX}
    _, version = await wired.labels.label_version(ALICE, MODEL, "mnist", 2, big, [])
    assert version.labels == big


# --- version labels ----------------------------------------------------------------------


async def test_version_labels_are_kept_on_that_version_and_read_back(wired: Wired) -> None:
    _, version = await wired.labels.label_version(ALICE, MODEL, "mnist", 2, {"validated": "true"}, [])
    assert version.labels == {"validated": "true"}
    repo, read = await wired.versions.get(MODEL, "mnist", 2)
    assert read.labels == {"validated": "true"}
    assert dict(version_to_proto(repo, read).labels) == {"validated": "true"}
    _, listed, _ = await wired.versions.list_page(MODEL, "mnist", 10, "")
    assert [(v.number, v.labels) for v in listed] == [(3, {}), (2, {"validated": "true"}), (1, {})]
    _, version = await wired.labels.label_version(ALICE, MODEL, "mnist", 2, {}, ["validated"])
    assert version.labels == {}
    # No event carries a version's mutable facts: labelling one publishes nothing.
    assert wired.world.units.message_names() == ["RepoCreated", "VersionCreated", "VersionCreated",
                                                 "VersionCreated"]


async def test_labelling_a_version_that_is_not_there_is_not_found(wired: Wired) -> None:
    with pytest.raises(NotFound, match="model 'mnist' has no version 9"):
        await wired.labels.label_version(ALICE, MODEL, "mnist", 9, {"k": "v"}, [])
    with pytest.raises(InvalidArgument) as error:
        await wired.labels.label_version(ALICE, MODEL, "mnist", 0, {"k": "v"}, [])
    assert error.value.field == "number"


# --- aliases -----------------------------------------------------------------------------


async def test_an_alias_names_a_version_moves_when_set_again_and_goes_with_version_0(wired: Wired) -> None:
    assert (await wired.labels.set_alias(ALICE, MODEL, "mnist", "champion", 2)).aliases == {"champion": 2}
    await wired.labels.set_alias(ALICE, MODEL, "mnist", "challenger", 3)
    moved = await wired.labels.set_alias(ALICE, MODEL, "mnist", "champion", 3)
    assert moved.aliases == {"champion": 3, "challenger": 3}
    assert (await wired.repos.get(MODEL, "mnist")).aliases == {"champion": 3, "challenger": 3}
    assert dict(repo_to_proto(moved).aliases) == {"champion": 3, "challenger": 3}
    removed = await wired.labels.set_alias(ALICE, MODEL, "mnist", "challenger", 0)
    assert removed.aliases == {"champion": 3}
    again = await wired.labels.set_alias(ALICE, MODEL, "mnist", "challenger", 0)  # nothing to remove
    assert again.aliases == {"champion": 3}
    assert [changed for changed, _, _ in wired.updates()] == [["aliases"]] * 4
    assert wired.updates()[-1][2] == {"champion": 3}


@pytest.mark.parametrize("alias", ["", "latest", "LaTeSt", "12", "v12", "V3", "a b", "a/b", "é", "x" * 256])
async def test_reserved_or_malformed_aliases_are_invalid(wired: Wired, alias: str) -> None:
    with pytest.raises(InvalidArgument) as error:
        await wired.labels.set_alias(ALICE, MODEL, "mnist", alias, 2)
    assert error.value.field == "alias"
    assert (await wired.repos.get(MODEL, "mnist")).aliases == {}


@pytest.mark.parametrize("alias", ["champion", "v1a", "prod-2", "_x", "x" * 255, "version12"])
async def test_aliases_like_mlflows_are_taken(wired: Wired, alias: str) -> None:
    assert (await wired.labels.set_alias(ALICE, MODEL, "mnist", alias, 2)).aliases == {alias: 2}


async def test_an_alias_of_a_version_that_is_not_there_is_not_found(wired: Wired) -> None:
    with pytest.raises(NotFound, match="model 'mnist' has no version 9"):
        await wired.labels.set_alias(ALICE, MODEL, "mnist", "champion", 9)
    with pytest.raises(InvalidArgument) as error:
        await wired.labels.set_alias(ALICE, MODEL, "mnist", "champion", -1)
    assert error.value.field == "version"
    with pytest.raises(NotFound, match="model 'ghost' not found"):
        await wired.labels.set_alias(ALICE, MODEL, "ghost", "champion", 1)


async def test_a_repo_that_keeps_no_versions_has_no_aliases(wired: Wired) -> None:
    await wired.repos.create(ALICE, RepoFields(kind=RepoKind.DATASET, name="logs", versioning=Versioning.NONE,
                                               source=HostPathSource("/data/logs")))
    with pytest.raises(FailedPrecondition, match="not versioned"):
        await wired.labels.set_alias(ALICE, RepoKind.DATASET, "logs", "champion", 1)
    # Its labels are the repo's, versions or not.
    labelled = await wired.labels.label_repo(ALICE, RepoKind.DATASET, "logs", {"k": "v"}, [])
    assert labelled.labels == {"k": "v"}


async def test_a_deleted_versions_aliases_go_with_it_and_the_others_stay(wired: Wired) -> None:
    await wired.labels.set_alias(ALICE, MODEL, "mnist", "champion", 2)
    await wired.labels.set_alias(ALICE, MODEL, "mnist", "staging", 2)
    await wired.labels.set_alias(ALICE, MODEL, "mnist", "challenger", 3)

    await wired.versions.delete(ALICE, MODEL, "mnist", 2)

    assert (await wired.repos.get(MODEL, "mnist")).aliases == {"challenger": 3}
    assert wired.world.units.message_names()[-2:] == ["VersionDeleted", "RepoUpdated"]
    assert wired.updates()[-1] == (["aliases"], {}, {"challenger": 3})
    await wired.versions.delete(ALICE, MODEL, "mnist", 1)  # named by no alias: the repo is unchanged
    assert wired.world.units.message_names()[-1] == "VersionDeleted"


async def test_too_many_aliases_are_refused(wired: Wired) -> None:
    for index in range(100):
        await wired.labels.set_alias(ALICE, MODEL, "mnist", f"a{index}", 2)
    with pytest.raises(InvalidArgument, match="at most 100 aliases"):
        await wired.labels.set_alias(ALICE, MODEL, "mnist", "one-more", 2)
    moved = await wired.labels.set_alias(ALICE, MODEL, "mnist", "a0", 3)  # moving one adds none
    assert (len(moved.aliases), moved.aliases["a0"]) == (100, 3)


# --- the store ---------------------------------------------------------------------------


async def test_labels_with_any_key_and_aliases_round_trip_through_sqlite(tmp_path: Path) -> None:
    async with sqlite_store(tmp_path / "repo.db", COLLECTIONS) as store:
        wired = await _wired(await repo_world(tmp_path, store=store))
        keys: dict[str, Any] = {"mlflow.source.name": "train.py", "$where": "x", "a.b.c": "é ✓"}
        await wired.labels.label_repo(ALICE, MODEL, "mnist", keys, [])
        await wired.labels.label_version(ALICE, MODEL, "mnist", 3, keys, [])
        await wired.labels.set_alias(ALICE, MODEL, "mnist", "champion", 3)

        repo = await wired.repos.get(MODEL, "mnist")
        assert (repo.labels, repo.aliases) == (keys, {"champion": 3})
        assert (await wired.versions.get(MODEL, "mnist", 3))[1].labels == keys


async def test_repos_and_versions_stored_before_labels_read_with_none(wired: Wired) -> None:
    async def strip(collection: str, codec: Any) -> list[Any]:
        docs = await wired.world.documents(collection)
        for doc in docs:
            doc.pop("labels")
            doc.pop("aliases", None)
        return [codec.from_document(doc) for doc in docs]

    repos = await strip("repos", StoredRepos(None))  # type: ignore[arg-type]
    versions = await strip("versions", StoredVersions(None))  # type: ignore[arg-type]
    assert [(r.labels, r.aliases) for r in repos] == [({}, {})]
    assert {v.number: v.labels for v in versions} == {1: {}, 2: {}, 3: {}}


# --- over gRPC ---------------------------------------------------------------------------


async def test_the_api_labels_and_aliases_and_every_read_shows_them(tmp_path: Path) -> None:
    wired = await _wired(await repo_world(tmp_path))
    key = new_key()
    server = new_server(tracing=False, authentication=Authentication(
        assertion_authenticator(CallerAssertions(key, REPO_SVC))))
    repos_pb2_grpc.add_RepoServiceServicer_to_server(wired.world.app.repo_servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    gateway = CallerAssertions(key, "gateway")
    alice, bob = gateway.metadata(ALICE, REPO_SVC), gateway.metadata(BOB, REPO_SVC)
    kind = repos_pb2.REPO_KIND_MODEL
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = repos_pb2_grpc.RepoServiceStub(channel)
            labelled = await stub.LabelRepo(repos_pb2.LabelRepoRequest(
                kind=kind, name="mnist", set={"team": "vision", "old": "x"}, remove=[]), metadata=alice)
            labelled = await stub.LabelRepo(repos_pb2.LabelRepoRequest(
                kind=kind, name="mnist", remove=["old"]), metadata=alice)
            aliased = await stub.SetAlias(repos_pb2.SetAliasRequest(
                kind=kind, repo="mnist", alias="champion", version=2), metadata=alice)
            version = await stub.LabelVersion(repos_pb2.LabelVersionRequest(
                kind=kind, repo="mnist", number=2, set={"validated": "true"}), metadata=alice)
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await stub.SetAlias(repos_pb2.SetAliasRequest(kind=kind, repo="mnist", alias="v2", version=2),
                                    metadata=alice)
            with pytest.raises(grpc.aio.AioRpcError) as denied:
                await stub.LabelRepo(repos_pb2.LabelRepoRequest(kind=kind, name="mnist", set={"k": "v"}),
                                     metadata=bob)
            got = await stub.GetRepo(repos_pb2.GetRepoRequest(kind=kind, name="mnist"), metadata=bob)
            listed = await stub.ListRepos(repos_pb2.ListReposRequest(kind=kind), metadata=bob)
            read = await stub.GetVersion(repos_pb2.GetVersionRequest(kind=kind, repo="mnist", number=2),
                                         metadata=bob)
            versions = await stub.ListVersions(repos_pb2.ListVersionsRequest(kind=kind, repo="mnist"),
                                               metadata=bob)
    finally:
        await server.stop(None)

    assert dict(labelled.labels) == {"team": "vision"} and dict(aliased.aliases) == {"champion": 2}
    assert dict(version.labels) == {"validated": "true"}
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert str(refused.value.details()).startswith("alias: ")
    assert denied.value.code() == grpc.StatusCode.PERMISSION_DENIED
    for repo in (got, listed.repos[0]):
        assert (dict(repo.labels), dict(repo.aliases)) == ({"team": "vision"}, {"champion": 2})
    assert dict(read.labels) == {"validated": "true"}
    assert {v.number: dict(v.labels) for v in versions.versions} == {3: {}, 2: {"validated": "true"}, 1: {}}

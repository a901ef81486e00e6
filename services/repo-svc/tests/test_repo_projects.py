"""The project use cases (app/projects.py), composed as production composes them, on the real store
adapters in the kit's in-memory store."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
from repo_fakes import PRODUCTION
from repo_world import World, repo_world
from shipyard_repo.app.projects import Projects
from shipyard_repo.domain.events import ProjectDeleted
from shipyard_repo.domain.projects import DESCRIPTION_MAX, DETAILS_MAX, ProjectFields

from shipyard.contracts.events.v1 import events_pb2
from shipyard.kit.caller import Caller
from shipyard.kit.errors import Aborted, AlreadyExists, InvalidArgument, NotFound, PermissionDenied
from shipyard.kit.testing import ALICE, BOB, OPERATOR_CALLER


@pytest.fixture
async def world(tmp_path: Path) -> World:
    return await repo_world(tmp_path)


@pytest.fixture
def projects(world: World) -> Projects:
    return world.app.projects


async def _nothing_stored_or_emitted(world: World) -> None:
    assert await world.documents("projects") == []
    assert await world.documents("requests") == []
    assert world.units.published == []


# --- create ------------------------------------------------------------------------------


async def test_create_makes_a_project_owned_by_the_caller(projects: Projects,
                                                          world: World) -> None:
    fields = ProjectFields(name="mnist", description="digits", thumbnail_url="https://x.org/a.png",
                           leaderboard=True, details="# Notes")
    project = await projects.create(ALICE, fields)

    assert project.owner == "alice"
    assert (project.name, project.description, project.thumbnail_url, project.leaderboard,
            project.details) == ("mnist", "digits", "https://x.org/a.png", True, "# Notes")
    assert project.revision == 1
    assert project.create_time == project.update_time
    assert await projects.get("mnist") == project
    assert [d["_id"] for d in await world.documents("projects")] == [project.id]


async def test_create_emits_project_created_with_the_right_fields(projects: Projects,
                                                                  world: World) -> None:
    project = await projects.create(ALICE, ProjectFields(name="mnist", description="digits"))

    [event] = world.units.published
    assert isinstance(event.data, events_pb2.ProjectCreated)
    assert event.subject == "projects/mnist"
    assert event.project == "mnist"
    data = event.data
    assert (data.project.id, data.project.name, data.project.owner) == (project.id, "mnist", "alice")
    assert data.project.description == "digits"
    assert data.project.revision == 1
    assert data.project.create_time.ToDatetime().replace(tzinfo=project.create_time.tzinfo) == \
        project.create_time
    assert data.actor.user == "alice"
    assert list(data.actor.roles) == ["data-scientist"]


async def test_create_actor_roles_are_sorted(projects: Projects, world: World) -> None:
    caller = Caller("carol", frozenset({"ml-engineer", "data-scientist", "operator"}))
    await projects.create(caller, ProjectFields(name="p"))
    assert list(world.units.published[0].data.actor.roles) == ["data-scientist", "ml-engineer", "operator"]


async def test_create_duplicate_name_is_already_exists_and_emits_nothing(
        projects: Projects, world: World) -> None:
    first = await projects.create(ALICE, ProjectFields(name="mnist"))
    with pytest.raises(AlreadyExists, match="mnist"):
        await projects.create(BOB, ProjectFields(name="mnist", description="other"))

    assert await world.read(lambda uow: uow.projects.find()) == [first]
    assert len(world.units.published) == 1


@pytest.mark.parametrize("name", [
    pytest.param("", id="empty"),
    pytest.param("a" * 64, id="64-chars"),
    pytest.param("a" * 300, id="300-chars"),
    pytest.param("team/mnist", id="slash"),
    pytest.param("bell\x07", id="bell"),
    pytest.param("mnist\n", id="trailing-newline"),
    pytest.param("-mnist", id="leading-dash"),
    pytest.param("my project", id="space"),
    pytest.param("proj\u00e9t", id="unicode-letter"),
    pytest.param("\u0434\u0430\u043d\u043d\u044b\u0435", id="cyrillic"),
])
async def test_create_with_a_bad_name_is_invalid_and_stores_nothing(
        projects: Projects, world: World, name: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        await projects.create(ALICE, ProjectFields(name=name))
    assert caught.value.field == "project.name"
    await _nothing_stored_or_emitted(world)


@pytest.mark.parametrize("url", ["ftp://example.com/a.png", "javascript:alert(1)", "http://",
                                 "https:///a.png", "/relative/a.png"])
async def test_create_with_a_bad_thumbnail_url_is_invalid(projects: Projects, world: World,
                                                          url: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        await projects.create(ALICE, ProjectFields(name="mnist", thumbnail_url=url))
    assert caught.value.field == "project.thumbnail_url"
    await _nothing_stored_or_emitted(world)


async def test_create_with_a_hostless_thumbnail_url_is_invalid(projects: Projects,
                                                                world: World) -> None:
    with pytest.raises(InvalidArgument) as caught:
        await projects.create(ALICE, ProjectFields(name="mnist", thumbnail_url="http://:8080/a.png"))
    assert caught.value.field == "project.thumbnail_url"
    await _nothing_stored_or_emitted(world)


async def test_create_with_an_overlong_description_is_invalid(projects: Projects,
                                                              world: World) -> None:
    with pytest.raises(InvalidArgument) as caught:
        await projects.create(ALICE, ProjectFields(name="mnist", description="d" * (DESCRIPTION_MAX + 1)))
    assert caught.value.field == "project.description"
    await _nothing_stored_or_emitted(world)


async def test_create_with_a_description_at_the_limit_is_fine(projects: Projects) -> None:
    project = await projects.create(ALICE, ProjectFields(name="mnist", description="d" * DESCRIPTION_MAX))
    assert len(project.description) == DESCRIPTION_MAX


async def test_create_with_overlong_details_is_invalid(projects: Projects,
                                                       world: World) -> None:
    with pytest.raises(InvalidArgument) as caught:
        await projects.create(ALICE, ProjectFields(name="mnist", details="d" * (DETAILS_MAX + 1)))
    assert caught.value.field == "project.details"
    await _nothing_stored_or_emitted(world)


async def test_create_with_control_characters_in_description_is_invalid(projects: Projects) -> None:
    with pytest.raises(InvalidArgument) as caught:
        await projects.create(ALICE, ProjectFields(name="mnist", description="\x1b[31mred"))
    assert caught.value.field == "project.description"


# --- idempotent create -------------------------------------------------------------------


async def test_retried_create_returns_the_first_result_and_emits_once(
        projects: Projects, world: World) -> None:
    first = await projects.create(ALICE, ProjectFields(name="mnist"), request_id="r-1")
    again = await projects.create(ALICE, ProjectFields(name="mnist"), request_id="r-1")

    assert again == first
    assert len(await world.documents("projects")) == 1
    assert len(world.units.published) == 1


async def test_retried_create_returns_the_first_result_even_with_other_fields(
        projects: Projects, world: World) -> None:
    first = await projects.create(ALICE, ProjectFields(name="mnist"), request_id="r-1")
    again = await projects.create(ALICE, ProjectFields(name="other"), request_id="r-1")

    assert again == first
    assert await projects.list_page(0, "") == ([first], "")
    assert len(world.units.published) == 1


async def test_request_ids_are_per_user(projects: Projects, world: World) -> None:
    await projects.create(ALICE, ProjectFields(name="a-proj"), request_id="r-1")
    bobs = await projects.create(BOB, ProjectFields(name="b-proj"), request_id="r-1")

    assert bobs.owner == "bob"
    assert bobs.name == "b-proj"
    assert len(world.units.published) == 2


async def test_without_request_id_a_repeat_is_a_duplicate(projects: Projects) -> None:
    await projects.create(ALICE, ProjectFields(name="mnist"))
    with pytest.raises(AlreadyExists):
        await projects.create(ALICE, ProjectFields(name="mnist"))


async def test_failed_create_does_not_remember_its_request_id(projects: Projects,
                                                              world: World) -> None:
    await projects.create(BOB, ProjectFields(name="mnist"))
    with pytest.raises(AlreadyExists):
        await projects.create(ALICE, ProjectFields(name="mnist"), request_id="r-1")
    assert await world.documents("requests") == []

    made = await projects.create(ALICE, ProjectFields(name="mnist-2"), request_id="r-1")
    assert made.name == "mnist-2"


async def test_retried_create_after_rename_returns_the_project_it_made(projects: Projects) -> None:
    first = await projects.create(ALICE, ProjectFields(name="mnist"), request_id="r-1")
    await projects.update(ALICE, "mnist", ProjectFields(name="mnist-old"), ["name"])
    await projects.create(BOB, ProjectFields(name="mnist"))

    again = await projects.create(ALICE, ProjectFields(name="mnist"), request_id="r-1")

    assert again.id == first.id


# --- get ---------------------------------------------------------------------------------


async def test_get_unknown_project_is_not_found(projects: Projects) -> None:
    with pytest.raises(NotFound, match="nope"):
        await projects.get("nope")


async def test_get_with_an_empty_name_is_invalid(projects: Projects) -> None:
    with pytest.raises(InvalidArgument) as caught:
        await projects.get("")
    assert caught.value.field == "name"


# --- list --------------------------------------------------------------------------------


async def test_list_pages_through_every_project_once_in_name_order(projects: Projects) -> None:
    names = [f"proj-{i:03d}" for i in range(120)]
    for name in reversed(names):  # created out of order
        await projects.create(ALICE, ProjectFields(name=name))

    seen: list[str] = []
    pages = 0
    token = ""
    while True:
        page, token = await projects.list_page(25, token)
        pages += 1
        assert len(page) <= 25
        seen.extend(p.name for p in page)
        if not token:
            break
        assert pages < 10, "pagination does not end"

    assert seen == names
    assert pages == 5


async def test_list_of_an_exact_multiple_ends_without_an_empty_page(projects: Projects) -> None:
    for i in range(50):
        await projects.create(ALICE, ProjectFields(name=f"p{i:02d}"))
    first, token = await projects.list_page(25, "")
    second, token2 = await projects.list_page(25, token)
    assert len(first) == len(second) == 25
    assert token2 == ""


async def test_list_default_page_size_is_50(projects: Projects) -> None:
    for i in range(51):
        await projects.create(ALICE, ProjectFields(name=f"p{i:02d}"))
    page, token = await projects.list_page(0, "")
    assert len(page) == 50
    assert token


async def test_list_empty(projects: Projects) -> None:
    assert await projects.list_page(10, "") == ([], "")


async def test_list_pages_stay_consistent_when_a_project_is_added_behind_the_cursor(
        projects: Projects) -> None:
    for name in ("b", "d", "f"):
        await projects.create(ALICE, ProjectFields(name=name))
    page, token = await projects.list_page(2, "")
    await projects.create(ALICE, ProjectFields(name="a"))
    rest, _ = await projects.list_page(2, token)
    assert [p.name for p in page + rest] == ["b", "d", "f"]


@pytest.mark.parametrize("token", [
    pytest.param("not-a-token!!", id="garbage"),
    pytest.param("%%%", id="not-base64"),
    pytest.param(base64.urlsafe_b64encode(b"x:foo/bar").decode(), id="wrong-prefix"),
    pytest.param(base64.urlsafe_b64encode(b"n:noslash").decode(), id="no-slash"),
    pytest.param(base64.urlsafe_b64encode(b"\xff\xfe").decode(), id="not-utf8"),
    pytest.param("\u00e9\u00e9", id="non-ascii"),
])
async def test_list_with_a_bad_page_token_is_invalid(projects: Projects, token: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        await projects.list_page(10, token)
    assert caught.value.field == "page_token"


async def test_list_with_a_negative_page_size_is_invalid(projects: Projects) -> None:
    with pytest.raises(InvalidArgument) as caught:
        await projects.list_page(-1, "")
    assert caught.value.field == "page_size"


# --- update ------------------------------------------------------------------------------


async def test_update_changes_only_masked_fields_and_reports_them(projects: Projects,
                                                                  world: World) -> None:
    before = await projects.create(ALICE, ProjectFields(name="mnist", description="old", details="keep"))
    after = await projects.update(ALICE, "mnist",
                                  ProjectFields(description="new", details="ignored", leaderboard=True),
                                  ["description", "leaderboard"])

    assert (after.description, after.leaderboard, after.details) == ("new", True, "keep")
    assert after.revision == before.revision + 1
    assert after.update_time > before.update_time
    assert after.create_time == before.create_time
    assert await projects.get("mnist") == after

    event = world.units.published[-1]
    assert isinstance(event.data, events_pb2.ProjectUpdated)
    assert list(event.data.changed_fields) == ["description", "leaderboard"]
    assert event.data.project.description == "new"
    assert event.data.project.revision == after.revision
    assert event.data.previous_name == ""
    assert event.data.actor.user == "alice"
    assert event.subject == "projects/mnist"


async def test_update_reports_only_fields_that_actually_changed(projects: Projects,
                                                                world: World) -> None:
    await projects.create(ALICE, ProjectFields(name="mnist", description="same"))
    await projects.update(ALICE, "mnist", ProjectFields(description="same", details="new"),
                          ["description", "details"])
    assert list(world.units.published[-1].data.changed_fields) == ["details"]


async def test_update_with_unchanged_values_emits_nothing(projects: Projects,
                                                          world: World) -> None:
    before = await projects.create(ALICE, ProjectFields(name="mnist", description="same"))
    after = await projects.update(ALICE, "mnist", ProjectFields(name="mnist", description="same"),
                                  ["name", "description"])
    assert after == before
    assert len(world.units.published) == 1


async def test_rename_emits_the_new_subject_and_the_previous_name(projects: Projects,
                                                                  world: World) -> None:
    await projects.create(ALICE, ProjectFields(name="mnist"))
    renamed = await projects.update(ALICE, "mnist", ProjectFields(name="digits"), ["name"])

    assert renamed.name == "digits"
    with pytest.raises(NotFound):
        await projects.get("mnist")
    event = world.units.published[-1]
    assert event.subject == "projects/digits"
    assert event.project == "digits"
    assert event.data.previous_name == "mnist"
    assert list(event.data.changed_fields) == ["name"]


@pytest.mark.parametrize("mask", [[], ["owner"], ["id"], ["revision"], ["create_time"], ["nope"],
                                  ["description", "owner"]])
async def test_update_with_a_bad_mask_is_invalid(projects: Projects, world: World,
                                                 mask: list[str]) -> None:
    before = await projects.create(ALICE, ProjectFields(name="mnist"))
    with pytest.raises(InvalidArgument) as caught:
        await projects.update(ALICE, "mnist", ProjectFields(description="x"), mask)
    assert caught.value.field == "update_mask"
    assert await projects.get("mnist") == before
    assert len(world.units.published) == 1


async def test_update_validates_the_new_values(projects: Projects, world: World) -> None:
    await projects.create(ALICE, ProjectFields(name="mnist"))
    with pytest.raises(InvalidArgument) as caught:
        await projects.update(ALICE, "mnist", ProjectFields(name="bad name"), ["name"])
    assert caught.value.field == "project.name"
    with pytest.raises(InvalidArgument) as caught:
        await projects.update(ALICE, "mnist", ProjectFields(thumbnail_url="ftp://x/y"), ["thumbnail_url"])
    assert caught.value.field == "project.thumbnail_url"
    assert len(world.units.published) == 1


async def test_rename_to_a_taken_name_is_already_exists(projects: Projects,
                                                        world: World) -> None:
    await projects.create(ALICE, ProjectFields(name="mnist"))
    await projects.create(ALICE, ProjectFields(name="digits"))
    with pytest.raises(AlreadyExists, match="digits"):
        await projects.update(ALICE, "mnist", ProjectFields(name="digits"), ["name"])
    assert (await projects.get("mnist")).name == "mnist"
    assert len(world.units.published) == 2


async def test_update_with_a_stale_revision_is_aborted(projects: Projects,
                                                       world: World) -> None:
    created = await projects.create(ALICE, ProjectFields(name="mnist"))
    await projects.update(ALICE, "mnist", ProjectFields(description="one"), ["description"],
                          revision=created.revision)
    with pytest.raises(Aborted):
        await projects.update(ALICE, "mnist", ProjectFields(description="two"), ["description"],
                              revision=created.revision)
    assert (await projects.get("mnist")).description == "one"
    assert len(world.units.published) == 2


async def test_update_with_the_current_revision_succeeds(projects: Projects) -> None:
    created = await projects.create(ALICE, ProjectFields(name="mnist"))
    updated = await projects.update(ALICE, "mnist", ProjectFields(description="x"), ["description"],
                                    revision=created.revision)
    assert updated.revision == created.revision + 1


async def test_update_unknown_project_is_not_found(projects: Projects) -> None:
    with pytest.raises(NotFound):
        await projects.update(ALICE, "nope", ProjectFields(description="x"), ["description"])


@pytest.mark.parametrize("caller", [BOB, PRODUCTION], ids=["other-data-scientist", "production-engineer"])
async def test_only_the_owner_may_update(projects: Projects, world: World,
                                         caller: Caller) -> None:
    before = await projects.create(ALICE, ProjectFields(name="mnist"))
    with pytest.raises(PermissionDenied, match="alice"):
        await projects.update(caller, "mnist", ProjectFields(description="mine now"), ["description"])
    assert await projects.get("mnist") == before
    assert len(world.units.published) == 1


async def test_an_operator_may_update_anyones_project(projects: Projects, world: World) -> None:
    await projects.create(ALICE, ProjectFields(name="mnist"))
    updated = await projects.update(OPERATOR_CALLER, "mnist", ProjectFields(description="tidied"),
                                    ["description"])
    assert updated.description == "tidied"
    assert updated.owner == "alice"
    assert world.units.published[-1].data.actor.user == "olga"


# --- delete ------------------------------------------------------------------------------


async def test_delete_removes_the_project_and_emits_project_deleted(projects: Projects,
                                                                    world: World) -> None:
    project = await projects.create(ALICE, ProjectFields(name="mnist"))
    await projects.delete(ALICE, "mnist")

    with pytest.raises(NotFound):
        await projects.get("mnist")
    event = world.units.published[-1]
    assert isinstance(event.data, events_pb2.ProjectDeleted)
    assert (event.data.project_id, event.data.name, event.data.actor.user) == (project.id, "mnist", "alice")
    assert event.subject == "projects/mnist"
    assert event.project == "mnist"


async def test_a_deleted_name_can_be_reused(projects: Projects) -> None:
    first = await projects.create(ALICE, ProjectFields(name="mnist"))
    await projects.delete(ALICE, "mnist")
    second = await projects.create(BOB, ProjectFields(name="mnist"))
    assert second.id != first.id
    assert second.owner == "bob"


async def test_delete_unknown_project_is_not_found(projects: Projects, world: World) -> None:
    with pytest.raises(NotFound):
        await projects.delete(ALICE, "nope")
    assert world.units.published == []


async def test_delete_with_a_stale_revision_is_aborted(projects: Projects,
                                                       world: World) -> None:
    created = await projects.create(ALICE, ProjectFields(name="mnist"))
    await projects.update(ALICE, "mnist", ProjectFields(description="x"), ["description"])
    with pytest.raises(Aborted):
        await projects.delete(ALICE, "mnist", revision=created.revision)
    assert await projects.get("mnist")
    assert len(world.units.published) == 2


@pytest.mark.parametrize("caller", [BOB, PRODUCTION], ids=["other-data-scientist", "production-engineer"])
async def test_only_the_owner_may_delete(projects: Projects, world: World,
                                         caller: Caller) -> None:
    await projects.create(ALICE, ProjectFields(name="mnist"))
    with pytest.raises(PermissionDenied):
        await projects.delete(caller, "mnist")
    assert await projects.get("mnist")
    assert len(world.units.published) == 1


async def test_an_operator_may_delete_anyones_project(projects: Projects, world: World) -> None:
    await projects.create(ALICE, ProjectFields(name="mnist"))
    await projects.delete(OPERATOR_CALLER, "mnist")
    assert await world.documents("projects") == []
    assert world.units.published[-1].data.actor.user == "olga"


# --- the test store itself ----------------------------------------------------------------


async def test_the_test_unit_of_work_publishes_nothing_and_keeps_nothing_on_error(
        projects: Projects, world: World) -> None:
    """Guards the test store: a failing block must roll back, or the tests above would prove nothing."""
    await projects.create(ALICE, ProjectFields(name="kept"))

    class Boom(Exception):
        pass

    with pytest.raises(Boom):
        async with world.units() as unit:
            await unit.requests.remember("k", "v")
            kept = await unit.projects.get("kept")
            assert kept is not None
            await unit.projects.remove(kept)
            unit.record(ProjectDeleted(kept, ALICE))
            raise Boom
    assert await world.documents("requests") == []
    assert [d["name"] for d in await world.documents("projects")] == ["kept"]
    assert [type(e.data) for e in world.units.published] == [events_pb2.ProjectCreated]
    assert (world.units.commits, world.units.rollbacks) == (1, 1)


# --- batch create ------------------------------------------------------------------------


async def test_batch_create_makes_all_in_order_with_one_event_each(projects: Projects,
                                                                   world: World) -> None:
    made = await projects.batch_create(ALICE, [(ProjectFields(name=f"p{i}"), "") for i in range(3)])

    assert [p.name for p in made] == ["p0", "p1", "p2"]
    assert {p.owner for p in made} == {"alice"}
    assert [e.data.project.name for e in world.units.published] == ["p0", "p1", "p2"]
    assert world.units.commits == 1


async def test_batch_create_with_an_existing_name_creates_none_and_names_the_entry(
        projects: Projects, world: World) -> None:
    await projects.create(ALICE, ProjectFields(name="taken"))
    with pytest.raises(AlreadyExists, match=r"requests\[1\]: .*'taken'"):
        await projects.batch_create(ALICE, [(ProjectFields(name="fresh"), ""),
                                            (ProjectFields(name="taken"), "")])

    assert sorted(d["name"] for d in await world.documents("projects")) == ["taken"]
    assert len(world.units.published) == 1


async def test_batch_create_with_a_bad_entry_is_invalid_and_names_it(projects: Projects,
                                                                     world: World) -> None:
    with pytest.raises(InvalidArgument) as caught:
        await projects.batch_create(ALICE, [(ProjectFields(name="ok"), ""), (ProjectFields(name="a/b"), "")])
    assert caught.value.field == "requests[1].project.name"
    await _nothing_stored_or_emitted(world)


async def test_batch_create_with_a_name_twice_is_invalid(projects: Projects,
                                                         world: World) -> None:
    twice = r"requests\[2\].project.name: 'x' is also the name of requests\[0\]"
    with pytest.raises(InvalidArgument, match=twice):
        await projects.batch_create(ALICE, [(ProjectFields(name=n), "") for n in ("x", "y", "x")])
    await _nothing_stored_or_emitted(world)


@pytest.mark.parametrize("count", [0, 101])
async def test_batch_create_needs_1_to_100_entries(projects: Projects, world: World,
                                                   count: int) -> None:
    with pytest.raises(InvalidArgument, match=f"requests: must hold 1 to 100 entries, not {count}"):
        await projects.batch_create(ALICE, [(ProjectFields(name=f"p{i}"), "") for i in range(count)])
    await _nothing_stored_or_emitted(world)


async def test_batch_create_retried_with_the_same_request_ids_returns_the_first_result(
        projects: Projects, world: World) -> None:
    entries = [(ProjectFields(name="a"), "r-a"), (ProjectFields(name="b"), "r-b")]
    first = await projects.batch_create(ALICE, entries)
    again = await projects.batch_create(ALICE, entries)

    assert again == first
    assert len(world.units.published) == 2

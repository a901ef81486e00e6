"""A completed image build (run-svc's BuildCompleted) puts the image in the catalog as its owner's —
once, replacing only the owner's own earlier build of that name."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from repo_world import World, repo_world
from shipyard_repo.domain.images import Image, ImageSource

from shipyard.contracts.common.v1 import common_pb2
from shipyard.contracts.events.v1 import events_pb2
from shipyard.contracts.run.v1 import builds_pb2
from shipyard.kit.environments import environment_digest
from shipyard.kit.events import Event
from shipyard.kit.testing import ALICE, BOB

SHA = "a" * 40


def _completed(name: str = "churn-env", owner: str = "alice", commit: str = SHA,
               requirements: tuple[str, ...] = ("scikit-learn==1.3.*", "pandas")) -> Event:
    build = builds_pb2.ImageBuild(
        id=f"b-{name}-{commit[:4]}", name=name, code="churn", commit=commit,
        build_file=".shipyard-ci.yml",
        requirements=requirements, base_image="python:3.11-slim", owner=owner,
        status=builds_pb2.IMAGE_BUILD_STATUS_COMPLETE)
    actor = common_pb2.Actor(user=owner, roles=["data-scientist"])
    data = events_pb2.BuildCompleted(build=build, actor=actor)
    return Event(id=f"e-{build.id}", type="io.shipyard.build.completed.v1", source="shipyard/run-svc",
                 subject=f"images/{name}", time=datetime(2026, 12, 7, tzinfo=UTC), data=data)


@pytest.fixture
async def world(tmp_path: Path) -> World:
    return await repo_world(tmp_path)


async def test_a_completed_build_enters_the_catalog_once(world: World) -> None:
    await world.app.build_events.apply([_completed(), _completed()])

    image = await world.app.images.get("churn-env")
    assert (image.source, image.owner, image.code, image.commit, image.url) == (
        ImageSource.CODE_REPO, "alice", "churn", SHA, "python:3.11-slim")
    assert image.digest == environment_digest("", ("scikit-learn==1.3.*", "pandas"))
    assert [e.image.name for e in world.units.messages(events_pb2.ImageAdded)] == ["churn-env"]


async def test_a_new_build_by_the_owner_replaces_their_image(world: World) -> None:
    await world.app.build_events.apply([_completed()])
    await world.app.build_events.apply([_completed(commit="b" * 40, requirements=("xgboost",))])
    image = await world.app.images.get("churn-env")
    assert (image.commit, image.requirements) == ("b" * 40, ("xgboost",))
    assert len(world.units.messages(events_pb2.ImageAdded)) == 2


async def test_a_build_cannot_take_someone_elses_image_or_a_standard_name(world: World) -> None:
    await world.app.images.add(BOB, Image(name="churn-env", url="registry.example.org/bob/churn:1"))
    await world.app.build_events.apply([_completed(), _completed(name="sklearn-1.5")])
    image = await world.app.images.get("churn-env")
    assert (image.owner, image.source) == ("bob", ImageSource.REGISTRY)
    assert (await world.app.images.get("sklearn-1.5")).source is ImageSource.STANDARD
    assert ALICE.user not in {e.image.owner for e in world.units.messages(events_pb2.ImageAdded)}

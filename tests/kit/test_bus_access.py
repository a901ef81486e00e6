"""The bus's users and permissions (shipyard.kit.bus_access): the table matches what the services
publish and consume, and a real nats-server given the generated configuration enforces it."""

from __future__ import annotations

import ast
import asyncio
import os
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path

import nats
import pytest
from nats.aio.client import Client as NatsClient
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

from shipyard.contracts.events.v1 import events_pb2
from shipyard.contracts.repo.v1 import projects_pb2
from shipyard.kit.bus import EventBus
from shipyard.kit.bus_access import (
    AREA_OWNERS,
    DURABLES,
    OBSERVER,
    SERVICE_USERS,
    USERS,
    WEBHOOK_STREAM,
    UnknownBusUser,
    event_subjects,
    inbox_prefix,
    owner_of,
    permissions,
)
from shipyard.kit.events import CATALOG, STREAM, Event, new_event
from shipyard.kit.service import build_runtime
from shipyard.kit.settings import Settings
from shipyard.local.nats_config import load_passwords, render, write_private
from tests.support.nats import NatsServer

SERVICES = Path(__file__).resolve().parents[2] / "services"


def _package(service: str) -> Path:
    """The service's package, in the folder of its one name (``services/run-svc/shipyard_run``)."""
    [package] = SERVICES.glob(f"{service}/shipyard_*")
    return package


def _published_by(service: str) -> set[str]:
    """The event messages a service's code makes (``events_pb2.RunStarted(...)``)."""
    found: set[str] = set()
    for path in _package(service).rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                    and isinstance(node.func.value, ast.Name) and node.func.value.id == "events_pb2"):
                found.add(node.func.attr)
    return found


def _consumers_in(service: str) -> int:
    """How many durable consumers a service's code registers (``bus.consume(...)``)."""
    return sum(1 for path in _package(service).rglob("*.py")
               for node in ast.walk(ast.parse(path.read_text()))
               if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
               and node.func.attr == "consume")


# --- the table ------------------------------------------------------------------------------


def test_every_event_area_has_one_owner() -> None:
    areas = {kind.subject.split(".")[2] for kind in CATALOG.values()}
    assert areas == set(AREA_OWNERS)
    assert set(AREA_OWNERS.values()) <= set(SERVICE_USERS)


@pytest.mark.parametrize("service", SERVICE_USERS)
def test_a_service_makes_only_the_events_of_the_areas_it_owns(service: str) -> None:
    by_name = {kind.message.DESCRIPTOR.name: kind for kind in CATALOG.values()}
    made = {by_name[name].subject for name in _published_by(service)}
    assert {owner_of(subject) for subject in made} <= {service}
    owned = {area for area, owner in AREA_OWNERS.items() if owner == service}
    assert {subject.split(".")[2] for subject in made} == owned, "an area nobody publishes, or the reverse"


@pytest.mark.parametrize("service", SERVICE_USERS)
def test_a_services_consumers_are_in_the_table(service: str) -> None:
    assert _consumers_in(service) == len(DURABLES.get(service, ()))


def test_the_table_names_the_services_own_consumer_constants() -> None:
    from shipyard_lineage.app.projector import CONSUMER as LINEAGE
    from shipyard_repo.app.build_events import CONSUMER as REPO_BUILDS
    from shipyard_repo.app.run_events import CONSUMER as REPO_RUNS
    from shipyard_run.app.output_refusals import CONSUMER as RUN_REFUSALS

    assert DURABLES == {"repo-svc": (REPO_RUNS, REPO_BUILDS), "run-svc": (RUN_REFUSALS,),
                        "lineage-svc": (LINEAGE,)}


def test_only_the_owner_publishes_an_area() -> None:
    assert event_subjects("repo-svc") == ("shipyard.events.project.*", "shipyard.events.repo.*",
                                          "shipyard.events.version.*", "shipyard.events.image.*")
    for user in ("lineage-svc", "gateway", OBSERVER):
        assert not [s for s in permissions(user).publish if s.startswith("shipyard.events.")]
    assert owner_of("shipyard.events.run.completed") == "run-svc"
    assert owner_of("shipyard.events.image.added") == "repo-svc"
    with pytest.raises(ValueError, match="no event subject"):
        owner_of("shipyard.events.billing.paid")
    with pytest.raises(UnknownBusUser, match="one of repo-svc"):
        permissions("runner")


def test_only_the_gateway_touches_the_mirror_its_webhooks_read() -> None:
    # Webhooks' consumers are named at run time; NATS cannot deny them by a prefix of their names.
    for user in USERS:
        touching = [s for s in permissions(user).publish if WEBHOOK_STREAM in s]
        assert bool(touching) == (user == "gateway"), user


# --- enforced by a real nats-server ---------------------------------------------------------


@pytest.fixture
def passwords(tmp_path: Path) -> dict[str, str]:
    return load_passwords(tmp_path / "nats-passwords.json")


@pytest.fixture
def secured(tmp_path: Path, passwords: dict[str, str]) -> Iterator[NatsServer]:
    config = tmp_path / "nats.conf"
    write_private(config, render(passwords))
    server = NatsServer(tmp_path / "js", config=config).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
async def buses(secured: NatsServer, passwords: dict[str, str]) -> AsyncIterator[dict[str, EventBus]]:
    started = {user: EventBus(secured.url, f"shipyard/{user}", user=user, password=passwords[user])
               for user in SERVICE_USERS}
    for bus in started.values():
        await bus.start()
    yield started
    for bus in started.values():
        await bus.stop()


def _event(subject: str) -> Event:
    kind = next(k for k in CATALOG.values() if k.subject == subject)
    return new_event(kind.message(), source="test", subject="x")


async def _connect(server: NatsServer, user: str, password: str, errors: list[Exception]) -> NatsClient:
    return await nats.connect(server.url, user=user, password=password, error_cb=_collect(errors),
                              allow_reconnect=False, inbox_prefix=inbox_prefix(user))


async def test_no_credential_or_a_wrong_one_is_refused(secured: NatsServer,
                                                       passwords: dict[str, str]) -> None:
    for login in ({}, {"user": "repo-svc", "password": passwords["run-svc"]},
                  {"user": "admin", "password": "admin"}):
        with pytest.raises(nats.errors.Error, match="Authorization Violation"):
            await nats.connect(secured.url, allow_reconnect=False, max_reconnect_attempts=0, **login)


async def test_each_service_publishes_its_own_events_and_no_others(
        buses: dict[str, EventBus], secured: NatsServer, passwords: dict[str, str]) -> None:
    subjects = [kind.subject for kind in CATALOG.values()]
    for subject in subjects:
        await buses[owner_of(subject)].publish([_event(subject)])
    assert await buses["repo-svc"].last_sequence() == len(subjects)
    with pytest.raises(TimeoutError):  # the bus's publish: no ack ever comes
        await buses["repo-svc"].publish([_event("shipyard.events.run.completed")])
    for service in SERVICE_USERS:
        foreign = [subject for subject in subjects if owner_of(subject) != service]
        errors = await _publish_raw(secured, service, passwords[service], foreign)
        assert all("permissions violation for publish" in str(e) for e in errors)
    assert await buses["repo-svc"].last_sequence() == len(subjects)


async def _publish_raw(server: NatsServer, user: str, password: str, subjects: list[str]) -> list[Exception]:
    """Publish on each subject as ``user``; the errors the server answered (one per refusal)."""
    errors: list[Exception] = []
    connection = await _connect(server, user, password, errors)
    try:
        for subject in subjects:
            await connection.publish(subject, b"forged")
        await connection.flush()
        await _until(lambda: len(errors) == len(subjects))
    finally:
        await connection.close()
    return errors


async def test_consumers_pull_ack_replay_and_watch(buses: dict[str, EventBus], secured: NatsServer,
                                                   passwords: dict[str, str]) -> None:
    got: list[Event] = []

    async def handler(events: list[Event]) -> None:
        got.extend(events)

    lineage = EventBus(secured.url, "shipyard/lineage-svc", user="lineage-svc",
                       password=passwords["lineage-svc"])
    lineage.consume("lineage", handler)
    await lineage.start()
    try:
        created = events_pb2.ProjectCreated(project=projects_pb2.Project(name="a"))
        await buses["repo-svc"].publish([new_event(created, source="test", subject="projects/a")])
        await _until(lambda: len(got) == 1)

        async def nothing() -> None:
            return None

        await lineage.replay("lineage", nothing)  # deletes its consumer and reads from the start
        await _until(lambda: len(got) == 2)
    finally:
        await lineage.stop()

    # The gateway: a watch (ordered consumer) and a webhook's durable consumer.
    js = buses["gateway"].broker.connection.jetstream()
    watch = await js.subscribe("shipyard.events.>", stream=STREAM, ordered_consumer=True,
                               deliver_policy=DeliverPolicy.ALL)
    assert (await watch.next_msg(timeout=5)).subject == "shipyard.events.project.created"
    await watch.unsubscribe()
    hook = await js.pull_subscribe("shipyard.events.>", durable="webhook-w1", stream=STREAM,
                                   config=ConsumerConfig(ack_policy=AckPolicy.EXPLICIT, max_ack_pending=1))
    (message,) = await hook.fetch(1, timeout=5)
    await message.ack()
    await js.delete_consumer(STREAM, "webhook-w1")


async def test_the_observer_reads_and_can_neither_publish_nor_touch_the_services_consumers(
        buses: dict[str, EventBus], secured: NatsServer, passwords: dict[str, str]) -> None:
    buses["lineage-svc"].consume("lineage", _ignore)
    await buses["repo-svc"].publish([_event("shipyard.events.project.created")])
    await buses["lineage-svc"].stop()
    await buses["lineage-svc"].start()  # now with its durable consumer
    errors: list[Exception] = []
    # A tool as the README shows it: nats-py's default inboxes, a durable consumer of its own.
    tool = await nats.connect(secured.url, user=OBSERVER, password=passwords[OBSERVER],
                              error_cb=_collect(errors), allow_reconnect=False)
    try:
        js = tool.jetstream()
        mine = await js.pull_subscribe("shipyard.events.>", durable="my-tool", stream=STREAM)
        (message,) = await mine.fetch(1, timeout=5)
        await message.ack()
        assert (await js.consumer_info(STREAM, "lineage")).name == "lineage"  # its lag, say
        with pytest.raises(TimeoutError):
            await js.publish("shipyard.events.project.created", b"forged", timeout=1)
        with pytest.raises(TimeoutError):
            await js.delete_consumer(STREAM, "lineage")
        assert (await js.stream_info(STREAM)).state.last_seq == 1
    finally:
        await tool.close()
    assert [e for e in errors if "permissions violation" in str(e).lower()]


async def test_a_service_cannot_read_another_services_replies_or_dead_letter_for_it(
        secured: NatsServer, passwords: dict[str, str]) -> None:
    errors: list[Exception] = []
    run = await _connect(secured, "run-svc", passwords["run-svc"], errors)
    try:
        await run.subscribe(f"{inbox_prefix('repo-svc')}.>")
        await run.publish("shipyard.deadletter.lineage", b"x")
        await run.flush()
        await _until(lambda: len(errors) == 2)
    finally:
        await run.close()
    assert all("permissions violation" in str(e).lower() for e in errors)


async def _ignore(events: list[Event]) -> None:
    return None


def _collect(errors: list[Exception]) -> Callable[[Exception], Awaitable[None]]:
    async def collect(error: Exception) -> None:
        errors.append(error)
    return collect


async def _until(condition: Callable[[], bool], deadline_s: float = 20.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + deadline_s
    while not condition():
        if loop.time() > deadline:
            raise TimeoutError("condition not met in time")
        await asyncio.sleep(0.02)


def test_a_placeholder_password_from_the_manifests_is_refused() -> None:
    with pytest.raises(ValueError, match="placeholder"):
        EventBus("nats://127.0.0.1:4222", "shipyard/repo-svc", user="repo-svc",
                 password="CHANGE-ME-NATS-PASSWORD")


async def test_a_service_keeps_its_bus_password_from_its_children(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SHIPYARD_NATS_PASSWORD", "the-repo-password")
    settings = Settings(service="repo-svc", data_dir=tmp_path, nats_user="repo-svc", internal_key="ab" * 32)
    assert settings.nats_password == "the-repo-password"
    build_runtime(settings, tracing=False)
    assert "SHIPYARD_NATS_PASSWORD" not in os.environ  # a model server or TensorBoard would inherit it

"""Attacks on the event bus: a run (or anyone who reaches the NATS port) puts forged events on it.

The reported attack: a user's run published a ProjectCreated to shipyard.events.project.created;
the activity feed showed "admin created project …" and another user's webhook received it with a
valid Shipyard signature. NATS now takes no connection without a credential, and each service's
credential publishes only the events of the areas that service owns.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import nats
import pytest
from nats.aio.client import Client as NatsClient
from nats.js.errors import NotFoundError

from shipyard.client.connection import Client
from shipyard.contracts.common.v1 import common_pb2
from shipyard.contracts.events.v1 import events_pb2
from shipyard.contracts.lineage.v1 import lineage_pb2
from shipyard.contracts.repo.v1 import projects_pb2
from shipyard.kit.bus_access import OBSERVER, inbox_prefix
from shipyard.kit.events import STREAM, Event, new_event
from shipyard.local.harness import Stack, wait_for
from tests.support.nats import connect_to_stack

CREATED = "io.shipyard.project.created.v1"


def forged_project(name: str) -> Event:
    """What the run published: a project 'created by admin' that nobody created."""
    return new_event(events_pb2.ProjectCreated(project=projects_pb2.Project(name=name, id=f"p-{name}"),
                                               actor=common_pb2.Actor(user="admin")),
                     source="shipyard/repo-svc", subject=f"projects/{name}", project=name)


def activity(admin: Client) -> set[str]:
    reply = admin.call(admin.lineage.ListActivity,
                       lineage_pb2.ListActivityRequest(page_size=1000, type_prefix=CREATED))
    return {a.subject for a in reply.activities}


def _collect(errors: list[Exception]) -> Callable[[Exception], Awaitable[None]]:
    async def collect(error: Exception) -> None:
        errors.append(error)
    return collect


async def _connect_as(stack: Stack, user: str, password: str, errors: list[Exception]) -> NatsClient:
    return await nats.connect(stack.nats_url, user=user, password=password, error_cb=_collect(errors),
                              allow_reconnect=False, max_reconnect_attempts=0,
                              inbox_prefix=inbox_prefix(user))


async def _publish_with(stack: Stack, user: str, event: Event) -> list[Exception]:
    """Publish ``event`` with ``user``'s own credential; the errors the server sent back."""
    errors: list[Exception] = []
    connection = await _connect_as(stack, user, stack.bus_password(user), errors)
    try:
        with pytest.raises(TimeoutError):  # JetStream never acknowledges what it never got
            await connection.jetstream().publish(event.nats_subject, event.payload(),
                                                 headers=event.headers(), timeout=2)
    finally:
        await connection.close()
    return errors


async def _stored_on(stack: Stack, subject: str) -> str | None:
    """The id of the newest event stored on ``subject``, read as the observer."""
    connection = await connect_to_stack(stack)
    try:
        message = await connection.jetstream().get_last_msg(STREAM, subject)
    except NotFoundError:
        return None
    finally:
        await connection.close()
    return (message.headers or {}).get("ce-id")


@pytest.mark.parametrize("login", [{}, {"user": "repo-svc", "password": "not-its-password"},
                                   {"user": "admin", "password": "admin"}],
                         ids=["anonymous", "wrong-password", "made-up-user"])
def test_nats_refuses_a_connection_without_a_valid_credential(stack: Stack, login: dict[str, str]) -> None:
    async def connect() -> None:
        connection = await nats.connect(stack.nats_url, allow_reconnect=False, max_reconnect_attempts=0,
                                        connect_timeout=5, **login)  # type: ignore[arg-type]
        await connection.close()

    with pytest.raises(nats.errors.Error, match="Authorization Violation"):
        asyncio.run(connect())


def test_a_forged_project_created_never_reaches_the_activity_feed(stack: Stack, admin: Client) -> None:
    forged = forged_project("forged-by-a-run")

    async def as_a_run() -> None:  # a run has no credential: it connects as it did before
        connection = await nats.connect(stack.nats_url, allow_reconnect=False, max_reconnect_attempts=0)
        await connection.jetstream().publish(forged.nats_subject, forged.payload(), headers=forged.headers())
        await connection.close()

    with pytest.raises(nats.errors.Error, match="Authorization Violation"):
        asyncio.run(as_a_run())
    # Nor with the credential of a service that does not own projects.
    for service in ("run-svc", "lineage-svc", "gateway"):
        errors = asyncio.run(_publish_with(stack, service, forged))
        assert [e for e in errors if "permissions violation for publish" in str(e)], service
    admin.call(admin.projects.CreateProject,
               projects_pb2.CreateProjectRequest(project=projects_pb2.Project(name="after-the-forgery")))
    wait_for(lambda: "projects/after-the-forgery" in activity(admin), 60, "the real project in the feed")
    assert "projects/forged-by-a-run" not in activity(admin)
    assert asyncio.run(_stored_on(stack, forged.nats_subject)) != forged.id


def test_a_services_credential_publishes_only_its_own_areas(stack: Stack) -> None:
    forged = new_event(events_pb2.RunCompleted(run_id="run-forged", actor=common_pb2.Actor(user="admin")),
                       source="shipyard/run-svc", subject="runs/run-forged")
    errors = asyncio.run(_publish_with(stack, "repo-svc", forged))
    assert [e for e in errors if "permissions violation for publish" in str(e)]
    assert asyncio.run(_stored_on(stack, forged.nats_subject)) is None


def test_the_observer_reads_events_but_cannot_publish_one(stack: Stack, admin: Client) -> None:
    admin.call(admin.projects.CreateProject,
               projects_pb2.CreateProjectRequest(project=projects_pb2.Project(name="observed")))
    wait_for(lambda: asyncio.run(_stored_on(stack, "shipyard.events.project.created")), 30,
             "a ProjectCreated on the stream, read as the observer")
    forged = forged_project("forged-by-a-tool")

    async def as_the_observer() -> list[Exception]:
        errors: list[Exception] = []
        connection = await nats.connect(stack.nats_url, user=OBSERVER, password=stack.bus_password(OBSERVER),
                                        error_cb=_collect(errors), allow_reconnect=False)
        try:
            with pytest.raises(TimeoutError):
                await connection.jetstream().publish(forged.nats_subject, forged.payload(),
                                                     headers=forged.headers(), timeout=2)
        finally:
            await connection.close()
        return errors

    assert [e for e in asyncio.run(as_the_observer()) if "permissions violation for publish" in str(e)]
    assert asyncio.run(_stored_on(stack, forged.nats_subject)) != forged.id

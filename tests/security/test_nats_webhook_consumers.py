"""Attack: a tool holding the observer's NATS credential disturbs a user's webhook. Each webhook has
a durable consumer of its own, named at run time (``webhook-<id>``); a tool that could delete it,
change it, pull from it or acknowledge its messages would make the webhook lose or delay events.

NATS permissions name consumers by whole subject tokens, so no rule could keep ``webhook-*`` from the
observer on the event stream itself: the webhooks' consumers read the gateway's mirror of it,
``SHIPYARD_WEBHOOKS``, on which the observer has no right at all. Its own durable consumers on
``SHIPYARD_EVENTS`` (the README's "Reading the event stream directly") work as before.
"""

from __future__ import annotations

import asyncio

import nats
import pytest
from nats.js.api import AckPolicy, ConsumerConfig
from nats.js.errors import NotFoundError

from shipyard.client.connection import Client
from shipyard.contracts.gateway.v1 import gateway_pb2 as gw
from shipyard.contracts.repo.v1 import projects_pb2
from shipyard.kit.bus_access import OBSERVER, WEBHOOK_STREAM
from shipyard.kit.events import STREAM
from shipyard.local.harness import Stack, wait_for
from shipyard.local.supervisor import free_port
from tests.support.nats import connect_to_stack


async def _webhook_consumer(stack: Stack, name: str) -> int | None:
    """The webhook consumer's acknowledged stream sequence, as the gateway sees it (None: not there)."""
    connection = await connect_to_stack(stack, "gateway")
    try:
        info = await connection.jetstream().consumer_info(WEBHOOK_STREAM, name)
    except NotFoundError:
        return None
    finally:
        await connection.close()
    return int(info.ack_floor.stream_seq) if info.ack_floor else 0


async def _disturb_as_the_observer(stack: Stack, name: str) -> list[str]:
    """Every way the observer might disturb the webhook's consumer ``name``; the server's refusals."""
    errors: list[Exception] = []

    async def collect(error: Exception) -> None:
        errors.append(error)

    tool = await nats.connect(stack.nats_url, user=OBSERVER, password=stack.bus_password(OBSERVER),
                              error_cb=collect, allow_reconnect=False)
    try:
        js = tool.jetstream(timeout=1)
        with pytest.raises(TimeoutError):  # denied: NATS drops the request, nothing answers
            await js.delete_consumer(WEBHOOK_STREAM, name)
        with pytest.raises(TimeoutError):
            await js.add_consumer(WEBHOOK_STREAM, ConsumerConfig(durable_name=name, max_ack_pending=1000,
                                                                 ack_policy=AckPolicy.EXPLICIT))
        with pytest.raises(TimeoutError):
            await js.consumer_info(WEBHOOK_STREAM, name)
        pulled = await js.pull_subscribe_bind(durable=name, stream=WEBHOOK_STREAM)
        with pytest.raises(TimeoutError):
            await pulled.fetch(1, timeout=1)
        await tool.publish(f"$JS.ACK.{WEBHOOK_STREAM}.{name}.1.1.1.0.0", b"+ACK")
        with pytest.raises(NotFoundError):  # not on the event stream, where the observer may delete
            await js.delete_consumer(STREAM, name)
        await tool.flush()
        await asyncio.sleep(0)  # let the last asynchronous error arrive
    finally:
        await tool.close()
    return [str(e).lower() for e in errors]


async def _read_as_the_readme_shows(stack: Stack) -> str:
    """The README's example: a durable consumer of the observer's own, fetched and acknowledged."""
    connection = await nats.connect(stack.nats_url, user=OBSERVER, password=stack.bus_password(OBSERVER))
    try:
        sub = await connection.jetstream().pull_subscribe("shipyard.events.>", durable="my-tool",
                                                          stream="SHIPYARD_EVENTS")
        (msg,) = await sub.fetch(1, timeout=5)
        await msg.ack()
        return str(msg.headers["ce-type"]) if msg.headers else ""
    finally:
        await connection.close()


def test_the_observer_cannot_delete_change_pull_or_ack_a_webhooks_consumer(
        stack: Stack, admin: Client) -> None:
    hook = admin.call(admin.webhooks.CreateWebhook, gw.CreateWebhookRequest(webhook=gw.Webhook(
        name="observed-hook", url=f"http://127.0.0.1:{free_port()}/hook"), secret="s" * 16))
    name = f"webhook-{hook.id}"
    try:
        wait_for(lambda: asyncio.run(_webhook_consumer(stack, name)) is not None, 30,
                 "the webhook's consumer on the gateway's mirror")

        refusals = asyncio.run(_disturb_as_the_observer(stack, name))

        denied = [e for e in refusals if "permissions violation" in e]
        assert len(denied) >= 5, refusals  # delete, change, info, pull, ack
        assert any("$js.ack." in e for e in denied), refusals
        assert asyncio.run(_webhook_consumer(stack, name)) is not None
    finally:
        admin.call(admin.webhooks.DeleteWebhook, gw.DeleteWebhookRequest(name="observed-hook"))


def test_the_readme_example_reads_the_stream_with_a_consumer_of_its_own(stack: Stack, admin: Client) -> None:
    admin.call(admin.projects.CreateProject,
               projects_pb2.CreateProjectRequest(project=projects_pb2.Project(name="read-by-a-tool")))
    assert asyncio.run(_read_as_the_readme_shows(stack)).startswith("io.shipyard.")

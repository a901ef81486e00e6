"""Webhooks: the rules (domain/webhooks.py, domain/event_types.py), the use cases
(app/webhooks.py) and one webhook's delivery (app/delivery.py), on fakes and the gateway's store
adapters over the in-memory store; the store adapters on a real SQLite store, the HTTP sender against
a local server."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from cloudevents.core.bindings.http import HTTPMessage, from_http_event
from gateway_fakes import (
    FakeBox,
    FakeDeliveries,
    FakeMessage,
    FakeSender,
    FakeStream,
    GatewayUnits,
    NoWait,
    gateway_units,
)
from shipyard_gateway.adapters.store import COLLECTIONS, unit_of_work_factory
from shipyard_gateway.adapters.webhook_sender import HttpSender
from shipyard_gateway.app.delivery import KEEPALIVE_S, Delivery
from shipyard_gateway.app.webhooks import Webhooks
from shipyard_gateway.domain.event_types import check_type_pattern, may_see, type_matches
from shipyard_gateway.domain.webhooks import (
    SIGNATURE_HEADER,
    DeadLetter,
    RetryPolicy,
    Webhook,
    check_secret,
    check_webhook,
    sign,
)

from shipyard.contracts.common.v1 import common_pb2
from shipyard.contracts.events.v1 import events_pb2
from shipyard.kit.caller import Caller
from shipyard.kit.egress import Egress
from shipyard.kit.errors import Aborted, AlreadyExists, InvalidArgument, NotFound
from shipyard.kit.events import Event, new_event
from shipyard.kit.store.sqlite import SQLiteDocumentStore
from tests.support.egress import Answers, only_127_0_0_1

SECRET = "s3cret-Of-The-Receiver-42"
ALICE = Caller("alice", frozenset({"ml-engineer"}))
BOB = Caller("bob", frozenset({"ml-engineer"}))
DANA = Caller("dana", frozenset({"data-scientist"}))
OPERATOR = Caller("root", frozenset({"operator"}))
PUBLIC_URL = "https://hooks.example.com/shipyard"
T0 = datetime(2026, 1, 1, tzinfo=UTC)


# --- validation --------------------------------------------------------------------------


def check(name: str = "ci-hook", url: str = PUBLIC_URL, types: tuple[str, ...] = (), project: str = "",
          allow_private: bool = False) -> None:
    check_webhook(name, url, list(types), project, allow_private)


@pytest.mark.parametrize(("kwargs", "field", "words"), [
    ({"name": ""}, "webhook.name", "must not be empty"),
    ({"name": "a/b"}, "webhook.name", "'/'"),
    ({"name": "x" * 64}, "webhook.name", "at most 63"),
    ({"url": ""}, "webhook.url", "must not be empty"),
    ({"url": "ftp://example.com/x"}, "webhook.url", "http:// or https://"),
    ({"url": "hooks.example.com/x"}, "webhook.url", "no scheme"),
    ({"url": "https:///path"}, "webhook.url", "must name a host"),
    ({"url": "https://user:pw@example.com/x"}, "webhook.url", "credentials"),
    ({"url": "https://token@example.com/x"}, "webhook.url", "credentials"),
    ({"url": "https://example.com:99999/"}, "webhook.url", "not a valid URL"),
    ({"url": "https://exa mple.com/"}, "webhook.url", "spaces"),
    ({"url": "http://127.0.0.1:9000/hook"}, "webhook.url.host", "loopback"),
    ({"url": "http://[::1]/hook"}, "webhook.url.host", "loopback"),
    ({"url": "http://[::ffff:10.1.2.3]/hook"}, "webhook.url.host", "private"),
    ({"url": "http://10.0.0.7/hook"}, "webhook.url.host", "private"),
    ({"url": "http://192.168.1.20/hook"}, "webhook.url.host", "private"),
    ({"url": "http://169.254.10.1/hook"}, "webhook.url.host", "link-local"),
    ({"url": "http://localhost:9000/hook"}, "webhook.url.host", "loopback name"),
    ({"url": "http://ci/hook"}, "webhook.url.host", "single-label"),
    ({"url": "http://ci.corp.internal/hook"}, "webhook.url.host", "internal host name"),
    ({"url": "http://127.1/hook"}, "webhook.url.host", "not a valid IP address"),
    ({"url": "http://2130706433/hook", "allow_private": True}, "webhook.url.host", "not a valid IP address"),
    ({"url": "http://0x7f000001/hook", "allow_private": True}, "webhook.url.host", "not a valid IP address"),
    ({"url": "http://1.2.3.999/hook"}, "webhook.url.host", "not a valid one"),
    ({"url": "http://[64:ff9b::a00:1]/hook"}, "webhook.url.host", "(NAT64 10.0.0.1) is a private address"),
    ({"url": "http://169.254.169.254/latest", "allow_private": True}, "webhook.url.host", "metadata"),
    ({"url": "http://[::ffff:169.254.169.254]/", "allow_private": True}, "webhook.url.host", "metadata"),
    ({"url": "http://metadata.google.internal/", "allow_private": True}, "webhook.url.host", "metadata"),
    ({"url": "http://0.0.0.0/hook", "allow_private": True}, "webhook.url.host", "never allowed"),
    ({"url": "http://255.255.255.255/hook", "allow_private": True}, "webhook.url.host", "never allowed"),
    ({"types": ("run.*",)}, "webhook.types", "not a Shipyard event type pattern"),
    ({"types": ("io.shipyard.>.created",)}, "webhook.types", "'>' may only end"),
    ({"types": ("io.shipyard.Run.*",)}, "webhook.types", "not a type segment"),
    ({"types": ("io.shipyard.",)}, "webhook.types", "not a Shipyard event type pattern"),
    ({"types": tuple(f"io.shipyard.a{i}.*" for i in range(51))}, "webhook.types", "at most 50"),
    ({"project": "no/such"}, "webhook.project", "'/'"),
])
def test_bad_webhooks_are_refused_naming_the_field(kwargs: dict[str, object], field: str, words: str) -> None:
    with pytest.raises(InvalidArgument) as refused:
        check(**kwargs)  # type: ignore[arg-type]
    assert refused.value.field == field
    assert words in refused.value.problem


def test_a_private_host_names_the_webhook_setting() -> None:
    with pytest.raises(InvalidArgument) as refused:
        check(url="http://10.0.0.7/hook")
    assert refused.value.problem == ("10.0.0.7 is a private address; an operator can allow private "
                                     "addresses (SHIPYARD_WEBHOOK_ALLOW_PRIVATE)")


@pytest.mark.parametrize("url", [PUBLIC_URL, "http://hooks.example.com:8080/a?b=c", "https://203.0.114.9/x"])
def test_public_http_urls_are_accepted(url: str) -> None:
    check(url=url)


@pytest.mark.parametrize("url", ["http://127.0.0.1:9000/hook", "http://localhost:9000/", "http://ci/hook",
                                 "http://10.0.0.7/", "http://[fe80::1]/"])
def test_private_addresses_are_accepted_when_the_operator_allows_them(url: str) -> None:
    check(url=url, allow_private=True)


@pytest.mark.parametrize("secret", ["short", "x" * 15, "y" * 257, "sixteen-chars-ok\nbut-a-newline"])
def test_bad_secrets_are_refused_without_repeating_them(secret: str) -> None:
    with pytest.raises(InvalidArgument) as refused:
        check_secret(secret)
    assert refused.value.field == "secret"
    assert secret not in str(refused.value)


def test_secret_lengths_at_the_limits_are_fine() -> None:
    assert check_secret("x" * 16) and check_secret("y" * 256)


# --- type patterns and visibility --------------------------------------------------------


@pytest.mark.parametrize(("pattern", "ce_type", "expected"), [
    ("io.shipyard.run.completed.v1", "io.shipyard.run.completed.v1", True),
    ("io.shipyard.run.completed.v1", "io.shipyard.run.failed.v1", False),
    ("io.shipyard.run.*", "io.shipyard.run.completed.v1", True),
    ("io.shipyard.run.>", "io.shipyard.run.completed.v1", True),
    ("io.shipyard.run.*", "io.shipyard.runner.completed.v1", False),
    ("io.shipyard.run.*", "io.shipyard.run", False),
    ("io.shipyard.*.created.v1", "io.shipyard.project.created.v1", True),
    ("io.shipyard.*.created.v1", "io.shipyard.project.deleted.v1", False),
    ("io.shipyard.*.v1", "io.shipyard.project.created.v1", False),  # a middle '*' is one segment
    ("io.shipyard.>", "io.shipyard.model.published.v1", True),
])
def test_type_patterns(pattern: str, ce_type: str, expected: bool) -> None:
    assert check_type_pattern("types", pattern) == pattern
    assert type_matches(pattern, ce_type) is expected


@pytest.mark.parametrize(("roles", "ce_type", "expected"), [
    ({"data-scientist"}, "io.shipyard.run.completed.v1", True),
    ({"data-scientist"}, "io.shipyard.model.published.v1", False),
    ({"data-scientist"}, "io.shipyard.deployment.created.v1", False),
    ({"ml-engineer"}, "io.shipyard.model.published.v1", True),
    ({"production-engineer"}, "io.shipyard.deployment.created.v1", True),
    ({"operator"}, "io.shipyard.model.published.v1", True),
    ({"data-scientist", "ml-engineer"}, "io.shipyard.model.published.v1", True),
])
def test_the_model_catalog_and_deployments_are_for_the_roles_that_ship(roles: set[str], ce_type: str,
                                                                      expected: bool) -> None:
    assert may_see(frozenset(roles), ce_type) is expected


# --- signature and backoff ---------------------------------------------------------------


def verify(secret: str, header: str, body: bytes) -> bool:
    """What a receiver does (the README's recipe), written independently of ``sign``."""
    fields = dict(part.split("=", 1) for part in header.split(","))
    expected = hmac.new(secret.encode(), fields["t"].encode() + b"." + body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, fields["v1"])


def test_the_signature_covers_the_timestamp_and_the_body() -> None:
    body = b'{"id": "e1"}'
    header = sign(SECRET, 1767225600, body)
    assert header.startswith("t=1767225600,v1=") and len(header.split("v1=")[1]) == 64
    assert verify(SECRET, header, body)
    assert not verify(SECRET, header, body + b" ")
    assert not verify("another-secret-of-16", header, body)
    assert not verify(SECRET, header.replace("t=1767225600", "t=1767225601"), body)


def test_backoff_doubles_up_to_the_cap() -> None:
    policy = RetryPolicy(attempts=10, backoff_s=0.5, backoff_max_s=60.0)
    assert [policy.delay(n) for n in range(1, 10)] == [0.5, 1, 2, 4, 8, 16, 32, 60, 60]


@pytest.mark.parametrize(("attempts", "base", "cap"), [(0, 0.5, 60), (3, -1, 60), (3, 2, 1)])
def test_nonsense_retry_settings_are_refused(attempts: int, base: float, cap: float) -> None:
    with pytest.raises(ValueError, match="webhook retries"):
        RetryPolicy(attempts, base, cap)


# --- use cases ---------------------------------------------------------------------------


@pytest.fixture
async def store() -> GatewayUnits:
    return await gateway_units()


async def stored_webhook(store: GatewayUnits, webhook_id: str) -> Webhook | None:
    """The webhook as stored now."""
    async with store() as tx:
        return await tx.webhooks.by_id(webhook_id)


async def every_webhook(store: GatewayUnits) -> list[Webhook]:
    async with store() as tx:
        return await tx.webhooks.of_owner(None)


async def every_letter(store: GatewayUnits) -> list[DeadLetter]:
    async with store() as tx:
        return await tx.dead_letters.find()


async def keep(store: GatewayUnits, letter: DeadLetter) -> None:
    async with store() as tx:
        await tx.dead_letters.keep(letter)


@pytest.fixture
def deliveries() -> FakeDeliveries:
    return FakeDeliveries()


@pytest.fixture
def webhooks(store: GatewayUnits, deliveries: FakeDeliveries) -> Webhooks:
    ids = iter(f"wh{i}" for i in range(1, 100))
    return Webhooks(store, FakeBox(), FakeStream(last=41), deliveries, clock=lambda: T0,
                    ids=lambda: next(ids))


async def test_create_starts_after_the_current_end_of_the_stream(webhooks: Webhooks,
                                                                 store: GatewayUnits,
                                                                 deliveries: FakeDeliveries) -> None:
    made = await webhooks.create(ALICE, "ci-hook", PUBLIC_URL, ["io.shipyard.run.*"], "vision", SECRET)
    assert (made.id, made.owner, made.start_sequence) == ("wh1", "alice", 41)
    assert made.types == ("io.shipyard.run.*",)
    assert deliveries.started == ["wh1"]
    found = await stored_webhook(store, "wh1")
    assert found is not None
    sealed = found.sealed_secret
    assert sealed and SECRET not in sealed and FakeBox().open(sealed) == SECRET


async def test_names_are_unique_per_owner(webhooks: Webhooks, store: GatewayUnits) -> None:
    await webhooks.create(ALICE, "ci-hook", PUBLIC_URL, [], "", SECRET)
    with pytest.raises(AlreadyExists, match="ci-hook"):
        await webhooks.create(ALICE, "ci-hook", PUBLIC_URL, [], "", SECRET)
    await webhooks.create(BOB, "ci-hook", PUBLIC_URL, [], "", SECRET)  # bob's own
    assert len(await every_webhook(store)) == 2


async def test_bad_input_creates_nothing(webhooks: Webhooks, store: GatewayUnits,
                                         deliveries: FakeDeliveries) -> None:
    with pytest.raises(InvalidArgument, match="secret"):
        await webhooks.create(ALICE, "ci-hook", PUBLIC_URL, [], "", "too-short")
    with pytest.raises(InvalidArgument, match=r"webhook\.url"):
        await webhooks.create(ALICE, "ci-hook", "http://127.0.0.1:9000/hook", [], "", SECRET)
    assert not await every_webhook(store) and not deliveries.started


async def test_a_webhook_for_events_its_owner_can_never_receive_is_refused(
        webhooks: Webhooks, store: GatewayUnits, deliveries: FakeDeliveries) -> None:
    for pattern in ("io.shipyard.deployment.>", "io.shipyard.model.published.v1"):
        with pytest.raises(InvalidArgument) as refused:
            await webhooks.create(DANA, "catalog", PUBLIC_URL, ["io.shipyard.run.*", pattern], "", SECRET)
        assert refused.value.field == "webhook.types"
        assert f"{pattern!r} matches only events your roles may not see" in refused.value.problem
    with pytest.raises(InvalidArgument, match=r"'io\.shipyard\.run\.complete\.v1' matches no Shipyard event"):
        await webhooks.create(DANA, "typo", PUBLIC_URL, ["io.shipyard.run.complete.v1"], "", SECRET)
    assert not await every_webhook(store) and not deliveries.started
    # A pattern that also matches what she may see is fine: she gets those.
    await webhooks.create(DANA, "all", PUBLIC_URL, ["io.shipyard.>"], "", SECRET)
    await webhooks.create(ALICE, "catalog", PUBLIC_URL, ["io.shipyard.deployment.>"], "", SECRET)


async def test_a_webhook_is_its_owners_and_the_operators(webhooks: Webhooks,
                                                         deliveries: FakeDeliveries) -> None:
    made = await webhooks.create(ALICE, "ci-hook", PUBLIC_URL, [], "", SECRET)
    assert (await webhooks.get(ALICE, "ci-hook")).id == made.id
    assert (await webhooks.get(ALICE, made.id)).id == made.id
    assert (await webhooks.get(OPERATOR, made.id)).id == made.id
    for attempt in (webhooks.get(BOB, "ci-hook"), webhooks.get(BOB, made.id), webhooks.delete(BOB, made.id),
                    webhooks.dead_letters(BOB, made.id, 0, "")):
        with pytest.raises(NotFound, match="not found"):
            await attempt
    assert [w.name for w in await webhooks.list(BOB)] == []
    assert [w.name for w in await webhooks.list(ALICE)] == ["ci-hook"]
    assert [w.owner for w in await webhooks.list(OPERATOR)] == ["alice"]
    assert deliveries.stopped == []


async def test_delete_stops_the_deliveries_and_drops_the_dead_letters(webhooks: Webhooks,
                                                                      store: GatewayUnits,
                                                                      deliveries: FakeDeliveries) -> None:
    made = await webhooks.create(ALICE, "ci-hook", PUBLIC_URL, [], "", SECRET)
    await keep(store, DeadLetter(made.id, "e1", "io.shipyard.run.failed.v1", "runs/a", 50, 3, "HTTP 503", T0))
    await webhooks.delete(OPERATOR, made.id)
    assert deliveries.stopped == [made.id]
    assert not await every_webhook(store) and not await every_letter(store)
    with pytest.raises(NotFound):
        await webhooks.get(ALICE, "ci-hook")


async def test_dead_letters_come_in_pages_oldest_first(webhooks: Webhooks,
                                                       store: GatewayUnits) -> None:
    made = await webhooks.create(ALICE, "ci-hook", PUBLIC_URL, [], "", SECRET)
    for sequence in (45, 42, 44, 43, 46):
        await keep(store, DeadLetter(made.id, f"e{sequence}", "io.shipyard.run.failed.v1", "runs/a",
                                     sequence, 3, "HTTP 503", T0))
    first, token = await webhooks.dead_letters(ALICE, "ci-hook", 2, "")
    second, token2 = await webhooks.dead_letters(ALICE, "ci-hook", 2, token)
    third, token3 = await webhooks.dead_letters(ALICE, "ci-hook", 2, token2)
    assert [[d.sequence for d in page] for page in (first, second, third)] == [[42, 43], [44, 45], [46]]
    assert token and token2 and token3 == ""
    with pytest.raises(InvalidArgument, match="page_token"):
        await webhooks.dead_letters(ALICE, "ci-hook", 2, "bm90LW91cnM=")
    with pytest.raises(InvalidArgument, match="page_size"):
        await webhooks.dead_letters(ALICE, "ci-hook", -1, "")


# --- delivery ----------------------------------------------------------------------------


def published(sequence: int, project: str = "vision") -> FakeMessage:
    data = events_pb2.ModelPublished(model="mnist", version=2, catalog_name="digits", project=project)
    return message(new_event(data, source="shipyard/repo", subject="models/mnist", project=project), sequence)


def run_failed(sequence: int, project: str = "vision", run: str = "r1") -> FakeMessage:
    data = events_pb2.RunFailed(run_id=run, actor=common_pb2.Actor(user="alice"))
    return message(new_event(data, source="shipyard/run", subject=f"runs/{run}", project=project), sequence)


def message(event: Event, sequence: int) -> FakeMessage:
    return FakeMessage(event.headers(), event.payload(), sequence)


async def delivery_for(store: GatewayUnits, owner: Caller, sender: FakeSender, sleep: NoWait,
                       types: tuple[str, ...] = (), project: str = "", attempts: int = 3) -> Delivery:
    webhook = Webhook("wh1", "ci-hook", PUBLIC_URL, types, project, owner.user, T0, start_sequence=0,
                      sealed_secret=FakeBox().seal(SECRET))
    async with store() as tx:
        webhook = await tx.webhooks.add(webhook)

    async def roles_of(user: str) -> frozenset[str] | None:
        return {c.user: c.roles for c in (ALICE, BOB, DANA, OPERATOR)}.get(user)

    return Delivery(webhook, SECRET, store, sender, roles_of, RetryPolicy(attempts, 0.5, 60.0), sleep=sleep,
                    clock=lambda: T0)


async def test_an_event_goes_out_as_signed_structured_cloudevent_json(store: GatewayUnits) -> None:
    sender = FakeSender()
    delivery = await delivery_for(store, ALICE, sender, NoWait())
    msg = run_failed(7)

    assert await delivery.handle(msg)

    [(url, headers, body)] = sender.requests
    assert url == PUBLIC_URL and headers["content-type"] == "application/cloudevents+json"
    assert headers[SIGNATURE_HEADER].startswith(f"t={int(T0.timestamp())},v1=")
    assert verify(SECRET, headers[SIGNATURE_HEADER], body)
    event = from_http_event(HTTPMessage(headers, body))
    assert (event.get_type(), event.get_subject(), event.get_datacontenttype()) == (
        "io.shipyard.run.failed.v1", "runs/r1", "application/json")
    assert event.get_dataschema() == "urn:shipyard:protobuf:shipyard.events.v1.RunFailed"
    assert event.get_extension("sequence") == 7 and event.get_extension("project") == "vision"
    assert event.get_data() == {"runId": "r1", "actor": {"user": "alice"}}
    assert json.loads(body)["id"] == msg.headers["ce-id"]
    assert msg.acked
    stored = await stored_webhook(store, "wh1")
    assert stored is not None and (stored.delivered, stored.delivered_sequence) == (1, 7)
    assert SECRET not in repr(delivery)


async def test_filters_skip_what_the_webhook_does_not_want(store: GatewayUnits) -> None:
    sender = FakeSender()
    delivery = await delivery_for(store, ALICE, sender, NoWait(), types=("io.shipyard.run.*",),
                                  project="vision")
    skipped = [published(1), run_failed(2, project="nlp")]
    wanted = run_failed(3)
    for msg in (*skipped, wanted):
        assert await delivery.handle(msg)
    assert [json.loads(body)["sequence"] for _, _, body in sender.requests] == [3]
    assert all(m.acked for m in (*skipped, wanted))


async def test_a_data_scientist_gets_no_model_catalog_events(store: GatewayUnits) -> None:
    sender = FakeSender()
    delivery = await delivery_for(store, DANA, sender, NoWait())
    for msg in (published(1), run_failed(2)):
        assert await delivery.handle(msg) and msg.acked
    assert [json.loads(body)["type"] for _, _, body in sender.requests] == ["io.shipyard.run.failed.v1"]


async def test_an_ml_engineer_gets_them(store: GatewayUnits) -> None:
    sender = FakeSender()
    delivery = await delivery_for(store, ALICE, sender, NoWait())
    assert await delivery.handle(published(1))
    assert [json.loads(body)["type"] for _, _, body in sender.requests] == ["io.shipyard.model.published.v1"]


async def test_failures_are_retried_with_backoff_until_the_receiver_takes_it(
        store: GatewayUnits) -> None:
    sender, sleep = FakeSender(["HTTP 503", "cannot connect to h:1: Connection refused"]), NoWait()
    delivery = await delivery_for(store, ALICE, sender, sleep, attempts=5)
    msg = run_failed(9)

    assert await delivery.handle(msg)

    assert sleep.waits == [0.5, 1.0]
    assert len(sender.requests) == 3
    assert all(verify(SECRET, h[SIGNATURE_HEADER], b) for _, h, b in sender.requests)
    assert len({b for _, _, b in sender.requests}) == 1  # the same event each time
    assert msg.acked and msg.kept_alive >= 3
    stored = await stored_webhook(store, "wh1")
    assert stored is not None and (stored.delivered, stored.dead_letters, stored.last_error) == (1, 0, "")


async def test_after_the_last_attempt_the_event_is_dead_lettered_and_the_next_one_goes(
        store: GatewayUnits) -> None:
    sender, sleep = FakeSender(["HTTP 500", "HTTP 502", "HTTP 503"]), NoWait()
    delivery = await delivery_for(store, ALICE, sender, sleep, attempts=3)
    lost, next_one = run_failed(11, run="lost"), run_failed(12, run="next")

    assert await delivery.handle(lost) and await delivery.handle(next_one)

    assert sleep.waits == [0.5, 1.0]  # no wait after the last attempt
    assert [json.loads(b)["subject"] for _, _, b in sender.requests] == ["runs/lost"] * 3 + ["runs/next"]
    [letter] = await every_letter(store)
    assert (letter.sequence, letter.subject, letter.attempts, letter.last_error) == (11, "runs/lost", 3,
                                                                                     "HTTP 503")
    assert letter.event_id == lost.headers["ce-id"] and letter.type == "io.shipyard.run.failed.v1"
    stored = await stored_webhook(store, "wh1")
    assert stored is not None
    assert (stored.delivered, stored.dead_letters, stored.delivered_sequence) == (1, 1, 12)
    assert lost.acked and next_one.acked


async def test_the_last_error_shows_while_retrying(store: GatewayUnits) -> None:
    seen: list[str] = []
    sleep = NoWait()

    async def sleep_and_look(seconds: float) -> None:
        await sleep(seconds)
        current = await stored_webhook(store, "wh1")
        assert current is not None
        seen.append(current.last_error)

    delivery = await delivery_for(store, ALICE, FakeSender(["HTTP 503"]), sleep)
    delivery.sleep = sleep_and_look
    assert await delivery.handle(run_failed(3))
    assert seen == ["HTTP 503"]


async def test_a_long_backoff_keeps_the_event_claimed(store: GatewayUnits) -> None:
    sleep = NoWait()
    delivery = await delivery_for(store, ALICE, FakeSender(["HTTP 503"]), sleep, attempts=2)
    delivery.retry = RetryPolicy(2, 25.0, 60.0)
    msg = run_failed(3)
    assert await delivery.handle(msg)
    assert sleep.waits == [KEEPALIVE_S, KEEPALIVE_S, 25.0 - 2 * KEEPALIVE_S]
    assert msg.kept_alive == 2 + 3  # before each attempt, after each wait


async def test_a_restart_mid_retries_goes_on_counting_the_attempts(store: GatewayUnits) -> None:
    sender = FakeSender(["HTTP 503"] * 20)
    first = await delivery_for(store, ALICE, sender, NoWait(), attempts=10)
    waits = 0

    async def stopped_after_four_waits(seconds: float) -> None:
        nonlocal waits
        waits += 1
        if waits > 4:
            raise asyncio.CancelledError  # the gateway stops while it waits to try again

    first.sleep = stopped_after_four_waits
    with pytest.raises(asyncio.CancelledError):
        await first.handle(run_failed(7))
    assert len(sender.requests) == 5
    # The next gateway gets the event again, unacknowledged: it makes the 5 attempts left.
    sleep = NoWait()
    restarted = Delivery(first.webhook, SECRET, store, sender, first.roles_of, first.retry, sleep=sleep,
                         clock=lambda: T0)
    assert await restarted.handle(run_failed(7))
    assert len(sender.requests) == 10
    assert sleep.waits[0] == RetryPolicy(10, 0.5, 60.0).delay(5)  # the wait it was in when it stopped
    [letter] = await every_letter(store)
    assert letter.attempts == 10
    stored = await stored_webhook(store, "wh1")
    assert stored is not None and (stored.failing_sequence, stored.failed_attempts) == (0, 0)


async def test_an_event_handled_before_a_crash_is_not_sent_again(store: GatewayUnits) -> None:
    sender = FakeSender()
    delivery = await delivery_for(store, ALICE, sender, NoWait())
    assert await delivery.handle(run_failed(5))
    redelivered = run_failed(5)
    assert await delivery.handle(redelivered)
    assert len(sender.requests) == 1 and redelivered.acked


async def test_a_deleted_webhook_stops(store: GatewayUnits) -> None:
    sender = FakeSender()
    delivery = await delivery_for(store, ALICE, sender, NoWait())
    async with store() as tx:
        current = await tx.webhooks.by_id("wh1")
        assert current is not None
        await tx.webhooks.remove(current)
    msg = run_failed(5)
    assert not await delivery.handle(msg)
    assert not sender.requests and not msg.acked


async def test_an_unreadable_event_is_skipped(store: GatewayUnits) -> None:
    sender = FakeSender()
    delivery = await delivery_for(store, ALICE, sender, NoWait())
    msg = FakeMessage({"ce-type": "io.shipyard.future.thing.v9", "ce-id": "x"}, b"\x01", 4)
    assert await delivery.handle(msg)
    assert not sender.requests and msg.acked


# --- the store adapter on SQLite ---------------------------------------------------------


async def test_the_sqlite_store_keeps_webhooks_and_pages_dead_letters(tmp_path: Path) -> None:
    document_store = SQLiteDocumentStore(tmp_path / "store.db")
    await document_store.open(COLLECTIONS)
    units = unit_of_work_factory(document_store, None)
    webhook = Webhook("wh1", "ci-hook", PUBLIC_URL, ("io.shipyard.run.*",), "vision", "alice", T0, 41,
                      sealed_secret="sealed")
    try:
        async with units() as tx:
            await tx.webhooks.add(webhook)
        async with units() as tx:
            with pytest.raises(AlreadyExists):
                await tx.webhooks.add(Webhook("wh2", "ci-hook", PUBLIC_URL, (), "", "alice", T0, 1))
        async with units() as tx:
            found = await tx.webhooks.named("alice", "ci-hook")
            assert found == replace(webhook, revision=1)
            assert await tx.webhooks.named("bob", "ci-hook") is None
            assert found.sealed_secret == "sealed"
            await tx.webhooks.save(found.sent(50))
            for sequence in (52, 51, 53):
                letter = DeadLetter("wh1", f"e{sequence}", "t", "s", sequence, 3, "HTTP 503", T0)
                await tx.dead_letters.keep(letter)
                await tx.dead_letters.keep(letter)  # a second time after a crash: kept once
        async with units() as tx:
            current = await tx.webhooks.by_id("wh1")
            assert current == replace(webhook.sent(50), revision=2)
            assert [d.sequence for d in await tx.dead_letters.after("wh1", 0, 2)] == [51, 52]
            assert [d.sequence for d in await tx.dead_letters.after("wh1", 52, 2)] == [53]
            assert [w.id for w in await tx.webhooks.of_owner("alice")] == ["wh1"]
            assert await tx.webhooks.of_owner("bob") == []
            await tx.dead_letters.forget("wh1")
            await tx.webhooks.remove(current)
            assert await tx.dead_letters.after("wh1", 0, 10) == []
            with pytest.raises(Aborted):  # a deleted webhook is not stored again
                await tx.webhooks.save(current)
    finally:
        await document_store.close()


# --- the HTTP sender against a local server ----------------------------------------------


@pytest.fixture
async def server() -> AsyncIterator[TestServer]:
    async def answer(request: web.Request) -> web.StreamResponse:
        status = int(request.match_info["status"])
        if status == 302:
            raise web.HTTPFound("/200")
        await request.read()
        return web.Response(status=status)

    app = web.Application()
    app.router.add_post("/{status}", answer)
    running = TestServer(app, host="127.0.0.1")
    await running.start_server()
    yield running
    await running.close()


async def test_the_sender_says_what_the_receiver_answered(server: TestServer) -> None:
    send = HttpSender(allow_private=True)
    try:
        assert await send(str(server.make_url("/204")), {}, b"{}") is None
        assert await send(str(server.make_url("/503")), {}, b"{}") == "HTTP 503"
        assert await send(str(server.make_url("/302")), {}, b"{}") == "HTTP 302"  # redirects are not followed
        with socket.socket() as unused:  # bound, not listening: connections are refused
            unused.bind(("127.0.0.1", 0))
            refused = await send(f"http://127.0.0.1:{unused.getsockname()[1]}/x", {}, b"{}")
        assert refused is not None and refused.endswith("connection refused")
    finally:
        await send.close()


async def test_the_sender_reaches_no_private_address_unless_allowed(server: TestServer) -> None:
    send = HttpSender(allow_private=False)
    try:
        literal = await send(str(server.make_url("/204")), {}, b"{}")
        assert literal is not None and "loopback" in literal
        named = await send(f"http://localhost:{server.port}/204", {}, b"{}")
        assert named is not None and "localhost resolves to" in named and "loopback" in named
    finally:
        await send.close()




async def test_the_sender_connects_to_the_checked_address_keeping_the_name() -> None:
    hosts: list[str] = []

    async def answer(request: web.Request) -> web.StreamResponse:
        hosts.append(request.host)
        return web.Response(status=204)

    app = web.Application()
    app.router.add_post("/", answer)
    running = TestServer(app, host="127.0.0.1")
    await running.start_server()
    port = running.port
    # A rebinding name: checked as 127.0.0.1, then it would point inside.
    stub = Answers([["127.0.0.1"], ["127.0.0.2"]])
    send = HttpSender(allow_private=True, egress=Egress(only_127_0_0_1, stub))
    try:
        assert await send(f"http://hook.example.test:{port}/", {}, b"{}") is None
        refused = await send(f"http://127.0.0.2:{port}/", {}, b"{}")
        assert refused == "127.0.0.2 is not the test's address"
    finally:
        await send.close()
        await running.close()
    assert stub.asked == ["hook.example.test"] and hosts == [f"hook.example.test:{port}"]


@pytest.fixture
async def raw_port() -> AsyncIterator[Callable[[bytes], Awaitable[int]]]:
    """Starts TCP servers that answer every connection with fixed bytes and close it: a port
    inside the network that speaks something else (ssh, POP3)."""
    servers: list[asyncio.Server] = []

    async def start(said: bytes) -> int:
        async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            writer.write(said)
            await writer.drain()
            writer.close()

        server = await asyncio.start_server(answer, "127.0.0.1", 0)
        servers.append(server)
        return int(server.sockets[0].getsockname()[1])

    yield start
    for server in servers:
        server.close()
        await server.wait_closed()


@pytest.mark.parametrize(("said", "error"), [
    (b"SSH-2.0-OpenSSH_9.6 secret-host-7f3a\r\n", "not an HTTP response"),
    (b"+OK secret banner of pop3.internal\r\n", "not an HTTP response"),
    (b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nsecret body", "an incomplete HTTP response"),
    (b"", "the server closed the connection without answering"),
])
async def test_the_last_error_never_carries_what_the_receiver_sent(
        raw_port: Callable[[bytes], Awaitable[int]], said: bytes, error: str) -> None:
    port = await raw_port(said)
    send = HttpSender(allow_private=True)
    try:
        assert await send(f"http://127.0.0.1:{port}/hook", {}, b"{}") == error
    finally:
        await send.close()

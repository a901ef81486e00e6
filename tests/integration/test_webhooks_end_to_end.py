"""Webhooks through the whole stack: events POSTed as signed structured-mode CloudEvents to a
receiver on 127.0.0.1 — in order, retried, dead-lettered, filtered, only what the owner may see,
only the owner's to manage, and the secret nowhere but where it belongs."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from aiohttp import web
from cloudevents.core.base import BaseCloudEvent
from cloudevents.core.bindings.http import HTTPMessage, from_http_event
from conftest import cli
from google.protobuf import json_format
from google.protobuf.field_mask_pb2 import FieldMask

from shipyard.client.connection import Client, ClientError
from shipyard.contracts.events.v1 import events_pb2
from shipyard.contracts.gateway.v1 import gateway_pb2 as gw
from shipyard.contracts.repo.v1 import projects_pb2, repos_pb2
from shipyard.kit.events import new_event
from shipyard.local.harness import Stack, wait_for
from shipyard.local.supervisor import free_port
from tests.support.nats import last_sequence, publish_as_owner

SECRET = "whsec-Never-Leaks-7f3a9c2e41"
ATTEMPTS = 6  # with these waits an event is given up after 0.25+0.5+1+1.5+1.5 s of retrying
ROLES = {"alice": gw.ROLE_ML_ENGINEER, "bob": gw.ROLE_ML_ENGINEER, "dana": gw.ROLE_DATA_SCIENTIST}


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """A stack that gives up on an event after a few seconds (the embedded stack allows webhooks
    to 127.0.0.1 by itself)."""
    running = Stack(tmp_path_factory.mktemp("stack") / "data", env={
        "SHIPYARD_PATH_IMPORT_ROOTS": "", "SHIPYARD_WEBHOOK_ATTEMPTS": str(ATTEMPTS),
        "SHIPYARD_WEBHOOK_BACKOFF_S": "0.25", "SHIPYARD_WEBHOOK_BACKOFF_MAX_S": "1.5"}).start()
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture(scope="module")
def users(stack: Stack, admin: Client) -> Iterator[dict[str, Client]]:
    """Clients of alice and bob (ML engineers) and dana (a data scientist)."""
    clients = {}
    for name, role in ROLES.items():
        request = gw.CreateUserRequest(user=gw.User(name=name, roles=[role]))
        made = admin.call(admin.identity.CreateUser, request)
        clients[name] = stack.client(made.token)
    yield clients
    for client in clients.values():
        client.close()


@pytest.fixture(autouse=True)
def no_webhooks_left(admin: Client) -> Iterator[None]:
    """Each test's webhooks go with it (their receivers stop: they would retry in the background)."""
    yield
    for webhook in list_webhooks(admin):
        admin.call(admin.webhooks.DeleteWebhook, gw.DeleteWebhookRequest(name=webhook.id))


# --- a receiver on 127.0.0.1 -------------------------------------------------------------


@dataclass(frozen=True)
class Received:
    """One request the receiver got, and what it answered."""

    headers: dict[str, str]
    body: bytes
    status: int

    @property
    def event(self) -> BaseCloudEvent:
        """The CloudEvent, read with the CNCF SDK."""
        return from_http_event(HTTPMessage(self.headers, self.body))


class Receiver:
    """An aiohttp endpoint in its own thread that records every request and answers with
    ``answer(number of requests before this one)``."""

    def __init__(self, answer: Callable[[int], int] = lambda _: 200, port: int | None = None) -> None:
        self.port = port or free_port()
        self.answer = answer
        self._requests: list[Received] = []
        self._lock = threading.Lock()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def start(self) -> Receiver:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._serve(), self._loop).result(10)
        return self

    def stop(self) -> None:
        if self._runner is not None:
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    async def _serve(self) -> None:
        app = web.Application()
        app.router.add_post("/hook", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()

    async def _handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        with self._lock:
            status = self.answer(len(self._requests))
            self._requests.append(Received({k.lower(): v for k, v in request.headers.items()}, body, status))
        return web.Response(status=status)

    @property
    def requests(self) -> list[Received]:
        with self._lock:
            return list(self._requests)

    def accepted(self, subject_prefix: str = "") -> list[BaseCloudEvent]:
        """The events it answered 2xx, in arrival order, whose subject starts with the prefix."""
        events = [r.event for r in self.requests if 200 <= r.status < 300]
        return [e for e in events if (e.get_subject() or "").startswith(subject_prefix)]


@pytest.fixture
def receivers() -> Iterator[Callable[..., Receiver]]:
    """Start receivers; all are stopped after the test."""
    started: list[Receiver] = []

    def start(answer: Callable[[int], int] = lambda _: 200, port: int | None = None) -> Receiver:
        started.append(Receiver(answer, port).start())
        return started[-1]

    yield start
    for receiver in started:
        receiver.stop()


def signature_is_valid(secret: str, headers: dict[str, str], body: bytes, tolerance_s: int = 300) -> bool:
    """What a receiver does (the README's recipe)."""
    fields = dict(part.split("=", 1) for part in headers["x-shipyard-signature"].split(","))
    expected = hmac.new(secret.encode(), f"{fields['t']}.".encode() + body, hashlib.sha256).hexdigest()
    fresh = abs(time.time() - int(fields["t"])) <= tolerance_s
    return fresh and hmac.compare_digest(expected, fields["v1"])


# --- helpers -----------------------------------------------------------------------------


def create_webhook(client: Client, name: str, url: str, types: tuple[str, ...] = (), project: str = "",
                   secret: str = SECRET) -> gw.Webhook:
    return client.call(client.webhooks.CreateWebhook, gw.CreateWebhookRequest(
        webhook=gw.Webhook(name=name, url=url, types=list(types), project=project), secret=secret))


def get_webhook(client: Client, name: str) -> gw.Webhook:
    return client.call(client.webhooks.GetWebhook, gw.GetWebhookRequest(name=name))


def list_webhooks(client: Client) -> list[gw.Webhook]:
    return list(client.call(client.webhooks.ListWebhooks, gw.ListWebhooksRequest()).webhooks)


def list_dead_letters(client: Client, name: str) -> list[gw.DeadLetter]:
    reply = client.call(client.webhooks.ListDeadLetters, gw.ListDeadLettersRequest(name=name))
    return list(reply.dead_letters)


def create_project(client: Client, name: str) -> None:
    client.call(client.projects.CreateProject, projects_pb2.CreateProjectRequest(
        project=projects_pb2.Project(name=name)))


def describe_project(client: Client, name: str, text: str) -> None:
    client.call(client.projects.UpdateProject, projects_pb2.UpdateProjectRequest(
        name=name, project=projects_pb2.Project(description=text),
        update_mask=FieldMask(paths=["description"])))


def create_repo(client: Client, name: str, project: str = "") -> None:
    client.call(client.repos.CreateRepo, repos_pb2.CreateRepoRequest(repo=repos_pb2.Repo(
        kind=repos_pb2.REPO_KIND_MODEL, name=name, project=project,
        source=repos_pb2.Source(none=repos_pb2.NoSource()))))


def publish_model(stack: Stack, model: str) -> None:
    """Nothing publishes to the model catalog yet: put a ModelPublished on the stream by hand."""
    event = new_event(events_pb2.ModelPublished(model=model, version=1, catalog_name=model),
                      source="shipyard/test", subject=f"models/{model}")

    asyncio.run(publish_as_owner(stack, event))


def wait_accepted(receiver: Receiver, count: int, prefix: str, timeout: float = 60) -> list[BaseCloudEvent]:
    return list(wait_for(lambda: len(events := receiver.accepted(prefix)) >= count and events, timeout,
                         f"{count} events under {prefix!r} at the receiver"))


# --- (a) delivered in order, signed, structured CloudEvents JSON ---------------------------


def test_events_arrive_in_order_signed_as_structured_cloudevents(users: dict[str, Client],
                                                                 receivers: Callable[..., Receiver]) -> None:
    alice, receiver = users["alice"], receivers()
    made = create_webhook(alice, "order", receiver.url, types=("io.shipyard.project.*",))
    assert made.has_secret and made.owner == "alice" and made.id
    for name in ("order-1", "order-2", "order-3"):
        create_project(alice, name)

    events = wait_accepted(receiver, 3, "projects/order-")

    assert [e.get_subject() for e in events] == ["projects/order-1", "projects/order-2", "projects/order-3"]
    assert {e.get_type() for e in events} == {"io.shipyard.project.created.v1"}
    assert [e.get_data()["project"]["name"] for e in events] == ["order-1", "order-2", "order-3"]
    sequences = [e.get_extension("sequence") for e in events]
    assert sequences == sorted(sequences) and sequences[0] > made.start_sequence
    assert {e.get_extension("project") for e in events} == {"order-1", "order-2", "order-3"}
    assert {e.get_datacontenttype() for e in events} == {"application/json"}
    for request in receiver.requests:
        assert request.headers["content-type"] == "application/cloudevents+json"
        assert signature_is_valid(SECRET, request.headers, request.body)
        assert not signature_is_valid("a-different-secret-16", request.headers, request.body)
    shown = wait_for(lambda: (w := get_webhook(alice, "order")).delivered == 3 and w, 30,
                     "the count to show 3")
    assert shown.delivered_sequence == sequences[-1] and shown.dead_letters == 0 and shown.last_error == ""


# --- (b) a receiver that is down for a while gets everything once, in order ----------------


def test_a_receiver_answering_503_for_a_while_gets_every_event_once_in_order(
        users: dict[str, Client], receivers: Callable[..., Receiver]) -> None:
    alice = users["alice"]
    receiver = receivers(lambda n: 503 if n < ATTEMPTS - 1 else 200)  # the first event on its last attempt
    create_webhook(alice, "flaky", receiver.url, types=("io.shipyard.project.*",))
    create_project(alice, "flaky-1")
    create_project(alice, "flaky-2")
    for text in ("first", "second"):
        describe_project(alice, "flaky-1", text)

    events = wait_accepted(receiver, 4, "projects/flaky-")

    assert [(e.get_subject(), e.get_type()) for e in events] == [
        ("projects/flaky-1", "io.shipyard.project.created.v1"),
        ("projects/flaky-2", "io.shipyard.project.created.v1"),
        ("projects/flaky-1", "io.shipyard.project.updated.v1"),
        ("projects/flaky-1", "io.shipyard.project.updated.v1")]
    assert [e.get_data()["project"]["description"] for e in events[2:]] == ["first", "second"]
    assert len({e.get_id() for e in events}) == 4  # each once
    assert all(signature_is_valid(SECRET, r.headers, r.body) for r in receiver.requests)
    assert [r.status for r in receiver.requests] == [503] * (ATTEMPTS - 1) + [200] * 4
    flaky = get_webhook(alice, "flaky")
    assert (flaky.delivered, flaky.dead_letters, flaky.last_error) == (4, 0, "")


def test_a_receiver_that_was_not_listening_gets_every_event_once_when_it_comes_up(
        users: dict[str, Client], receivers: Callable[..., Receiver]) -> None:
    alice, port = users["alice"], free_port()
    create_webhook(alice, "late", f"http://127.0.0.1:{port}/hook", types=("io.shipyard.project.*",))
    create_project(alice, "late-1")
    wait_for(lambda: "connect" in get_webhook(alice, "late").last_error, 30, "a failed attempt to show")

    receiver = receivers(port=port)
    create_project(alice, "late-2")
    events = wait_accepted(receiver, 2, "projects/late-")

    assert [e.get_subject() for e in events] == ["projects/late-1", "projects/late-2"]
    assert len(receiver.requests) == 2
    late = get_webhook(alice, "late")
    assert (late.delivered, late.dead_letters, late.last_error) == (2, 0, "")


# --- (c) dead letters, and a failing webhook does not hold up another ----------------------


def test_events_a_receiver_never_takes_are_dead_lettered_without_delaying_others(
        stack: Stack, home: Path, admin: Client, receivers: Callable[..., Receiver]) -> None:
    broken, healthy = receivers(lambda _: 500), receivers()
    create_webhook(admin, "broken", broken.url, types=("io.shipyard.project.created.v1",))
    create_webhook(admin, "healthy", healthy.url, types=("io.shipyard.project.created.v1",))
    for name in ("dead-1", "dead-2"):
        create_project(admin, name)

    wait_accepted(healthy, 2, "projects/dead-")
    assert get_webhook(admin, "broken").dead_letters < 2  # still retrying the first ones

    wait_for(lambda: get_webhook(admin, "broken").dead_letters == 2, 60, "both events to be dead-lettered")
    letters = list_dead_letters(admin, "broken")
    assert [(d.subject, d.attempts, d.last_error, d.type) for d in letters] == [
        (f"projects/dead-{i}", ATTEMPTS, "HTTP 500", "io.shipyard.project.created.v1") for i in (1, 2)]
    assert letters[0].sequence < letters[1].sequence
    assert len(broken.requests) == 2 * ATTEMPTS
    shown = get_webhook(admin, "broken")
    assert (shown.delivered, shown.last_error) == (0, "HTTP 500")
    assert shown.delivered_sequence == letters[1].sequence
    table = cli(stack, home, "webhook", "dead-letters", "broken").stdout
    assert "projects/dead-1" in table and "projects/dead-2" in table and "HTTP 500" in table
    listed = cli(stack, home, "webhook", "list").stdout
    assert "broken" in listed and "healthy" in listed


# --- (d) type and project filters ----------------------------------------------------------


def test_type_and_project_filters(users: dict[str, Client], receivers: Callable[..., Receiver]) -> None:
    alice, receiver = users["alice"], receivers()
    create_webhook(alice, "filtered", receiver.url, types=("io.shipyard.repo.*",), project="filter-a")
    create_project(alice, "filter-a")
    create_project(alice, "filter-b")
    create_repo(alice, "filter-a-model", project="filter-a")
    create_repo(alice, "filter-b-model", project="filter-b")
    create_repo(alice, "filter-none-model")
    create_repo(alice, "filter-a-marker", project="filter-a")  # after all the others in the stream

    events = wait_accepted(receiver, 2, "")

    assert [(e.get_type(), e.get_data()["repo"]["name"]) for e in events] == [
        ("io.shipyard.repo.created.v1", "filter-a-model"), ("io.shipyard.repo.created.v1", "filter-a-marker")]
    assert len(receiver.requests) == 2


# --- (e) visibility: the model catalog is not a data scientist's --------------------------


def test_a_data_scientists_webhook_gets_no_model_catalog_events(
        stack: Stack, users: dict[str, Client], receivers: Callable[..., Receiver]) -> None:
    dana_receiver, alice_receiver = receivers(), receivers()
    create_webhook(users["dana"], "everything", dana_receiver.url)
    create_webhook(users["alice"], "catalog", alice_receiver.url, types=("io.shipyard.model.published.*",))
    publish_model(stack, "visible-model")
    create_project(users["dana"], "after-the-model")  # a later event: the model's was decided first

    dana_events = wait_accepted(dana_receiver, 1, "projects/after-the-model")
    alice_events = wait_accepted(alice_receiver, 1, "models/")

    assert [e.get_type() for e in dana_receiver.accepted()] == ["io.shipyard.project.created.v1"]
    assert dana_events[0].get_subject() == "projects/after-the-model"
    assert [(e.get_type(), e.get_data()["model"]) for e in alice_events] == [
        ("io.shipyard.model.published.v1", "visible-model")]


# --- (f) bad input: clear errors, nothing made ---------------------------------------------


def test_bad_input_is_refused_clearly_and_creates_nothing(stack: Stack, home: Path, tmp_path: Path,
                                                          receivers: Callable[..., Receiver]) -> None:
    url = receivers().url
    secret_file = tmp_path / "secret"
    secret_file.write_text(SECRET + "\n")
    made = cli(stack, home, "webhook", "create", "cli-hook", "--url", url, "--secret-file", str(secret_file),
               "--types", "io.shipyard.project.created.v1,io.shipyard.project.deleted.v1",
               "--types", "io.shipyard.repo.*")
    assert "Created webhook" in made.stdout
    shown = cli(stack, home, "webhook", "get", "cli-hook").stdout
    assert "io.shipyard.project.created.v1, io.shipyard.project.deleted.v1, io.shipyard.repo.*" in shown

    bad = {
        ("bad-url", "--url", "ftp://example.com/hook", "--secret", SECRET): "webhook.url",
        ("bad-creds", "--url", "https://user:pw@example.com/", "--secret", SECRET): "credentials",
        ("bad-secret", "--url", url, "--secret", "too-short"): "secret: must be 16 to 256",
        ("bad-type", "--url", url, "--types", "run.*", "--secret", SECRET): "webhook.types",
        ("bad name", "--url", url, "--secret", SECRET): "webhook.name",
        ("cli-hook", "--url", url, "--secret", SECRET): "ALREADY_EXISTS",
    }
    for args, words in bad.items():
        refused = cli(stack, home, "webhook", "create", *args, check=False)
        assert refused.returncode == 1, refused.stdout
        assert words in refused.stderr, refused.stderr
        if words != "ALREADY_EXISTS":
            assert "INVALID_ARGUMENT" in refused.stderr
    listed = cli(stack, home, "webhook", "list").stdout
    assert "cli-hook" in listed and not any(n in listed for n in ("bad-url", "bad-creds", "bad-secret",
                                                                   "bad-type"))
    deleted = cli(stack, home, "webhook", "delete", "cli-hook").stdout
    assert "Deleted webhook" in deleted
    gone = cli(stack, home, "webhook", "get", "cli-hook", check=False)
    assert gone.returncode == 1 and "NOT_FOUND" in gone.stderr


# --- (g) a webhook is its owner's ----------------------------------------------------------


def test_another_user_can_neither_see_nor_delete_your_webhook(admin: Client, users: dict[str, Client],
                                                              receivers: Callable[..., Receiver]) -> None:
    alice, bob = users["alice"], users["bob"]
    made = create_webhook(alice, "private-hook", receivers().url)
    for call, request in ((bob.webhooks.GetWebhook, gw.GetWebhookRequest(name="private-hook")),
                          (bob.webhooks.GetWebhook, gw.GetWebhookRequest(name=made.id)),
                          (bob.webhooks.DeleteWebhook, gw.DeleteWebhookRequest(name=made.id)),
                          (bob.webhooks.ListDeadLetters, gw.ListDeadLettersRequest(name=made.id))):
        with pytest.raises(ClientError) as refused:
            bob.call(call, request)
        assert refused.value.code == "NOT_FOUND"
    assert made.id not in {w.id for w in list_webhooks(bob)}
    assert made.id in {w.id for w in list_webhooks(admin)}
    assert get_webhook(admin, made.id).owner == "alice"  # an operator, by id
    assert get_webhook(alice, "private-hook").id == made.id  # still there
    alice.call(alice.webhooks.DeleteWebhook, gw.DeleteWebhookRequest(name="private-hook"))
    with pytest.raises(ClientError) as gone:
        get_webhook(alice, "private-hook")
    assert gone.value.code == "NOT_FOUND"


# --- (h) the secret stays secret -----------------------------------------------------------


def test_the_secret_is_in_no_response_log_or_event(stack: Stack, home: Path, admin: Client,
                                                   receivers: Callable[..., Receiver]) -> None:
    receiver = receivers()
    answers = [json_format.MessageToJson(create_webhook(admin, "secret-check", receiver.url))]
    create_project(admin, "secret-check")
    wait_accepted(receiver, 1, "projects/secret-check")
    answers += [json_format.MessageToJson(get_webhook(admin, "secret-check")),
                *(json_format.MessageToJson(w) for w in list_webhooks(admin))]
    with pytest.raises(ClientError) as refused:
        create_webhook(admin, "secret-bad", "ftp://example.com/", secret=SECRET)
    answers.append(refused.value.message)
    answers += [cli(stack, home, "webhook", command, *args).stdout
                for command, args in (("list", ()), ("get", ("secret-check",)))]
    for method, body in (("GetWebhook", {"name": "secret-check"}), ("ListWebhooks", {})):
        request = urllib.request.Request(
            f"{stack.http_url}/api/shipyard.gateway.v1.WebhookService/{method}",
            data=json.dumps(body).encode(),
            headers={"Authorization": f"Bearer {stack.admin_token()}", "Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=10) as reply:
            text = reply.read().decode()
        assert '"hasSecret": true' in text
        answers.append(text)
    answers += [repr(r.headers) + r.body.decode() for r in receiver.requests]
    events = admin.stream(admin.events.Watch, gw.WatchRequest(from_start=True))
    last = stack_last_sequence(stack)
    for event in events:
        answers.append(event.SerializeToString().decode("latin-1"))
        if event.sequence >= last:
            break

    assert not [a for a in answers if SECRET in a]
    logs = {p.name: p.read_bytes() for p in stack.data.logs.iterdir() if p.is_file()}
    assert "gateway.log" in logs
    assert not [name for name, text in logs.items() if SECRET.encode() in text]
    stored = [p for p in (stack.data.root / "gateway").iterdir() if p.is_file()]  # the db, its WAL, the key
    assert stored and not [p.name for p in stored if SECRET.encode() in p.read_bytes()]


def stack_last_sequence(stack: Stack) -> int:
    """The stream's newest sequence, straight from NATS."""
    return asyncio.run(last_sequence(stack))

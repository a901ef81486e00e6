"""SSRF past the host check, as a data scientist would try it: an import or a webhook aimed at a
host that passes the check, which then leads somewhere the check never saw — a redirect to an
address that is never allowed (0.0.0.0, which reaches this machine's own ports) — and a webhook
aimed at a port that speaks something else, to read its banner back from ``last_error``.

The stack allows private sources (as a test lab would), so the attacker's servers on 127.0.0.1
pass the check; 0.0.0.0 is refused even then. A name that resolves to one address when checked
and another when connected (DNS rebinding) needs a DNS server the test controls: that attack is
tested against the adapters with a stub resolver (tests/kit/test_egress.py,
services/repo-svc/tests/test_repo_fetchers.py, services/gateway/tests/test_gateway_webhooks.py).
"""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest

from shipyard.client.connection import Client
from shipyard.contracts.gateway.v1 import gateway_pb2 as gw
from shipyard.contracts.repo.v1 import projects_pb2
from shipyard.contracts.repo.v1 import repos_pb2 as pb
from shipyard.local.harness import Stack, wait_for
from tests.support.egress import banner_server
from tests.support.users import signed_in

BANNER = b"+OK pop3.internal ready <secret-7f3a9c@internal>\r\n"


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """A stack whose operator allows private sources; webhooks to 127.0.0.1 are allowed by the
    embedded stack itself."""
    with Stack(tmp_path_factory.mktemp("stack") / "data", env={
        "SHIPYARD_PATH_IMPORT_ROOTS": "", "SHIPYARD_ALLOW_PRIVATE_SOURCES": "true",
        "SHIPYARD_WEBHOOK_ATTEMPTS": "2", "SHIPYARD_WEBHOOK_BACKOFF_S": "0.25",
        "SHIPYARD_WEBHOOK_BACKOFF_MAX_S": "0.5"}) as running:
        yield running


@pytest.fixture(scope="module")
def mallory(stack: Stack, admin: Client) -> Iterator[Client]:
    """A data scientist: she may import datasets and make webhooks."""
    client = signed_in(stack, admin, "mallory")
    yield client
    client.close()


@dataclass
class Server:
    """An HTTP server on 127.0.0.1 that records the paths asked for and answers 200, or, given
    ``redirect_to``, redirects (307) every request to the same path there."""

    redirect_to: str = ""
    seen: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                outer.seen.append(self.path)
                self.send_response(307 if outer.redirect_to else 200)
                if outer.redirect_to:
                    self.send_header("Location", outer.redirect_to + self.path)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self._server.server_address[1]
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture
def internal() -> Iterator[Server]:
    """An internal service on this machine: reachable as 0.0.0.0, which no import may reach."""
    server = Server()
    yield server
    server.stop()


@pytest.fixture
def redirector(internal: Server) -> Iterator[Server]:
    """The attacker's server: it passes the host check, and redirects every request inside."""
    server = Server(redirect_to=f"http://0.0.0.0:{internal.port}")
    yield server
    server.stop()


def _import(client: Client, name: str, source: pb.Source) -> pb.Repo:
    client.call(client.repos.CreateRepo, pb.CreateRepoRequest(
        repo=pb.Repo(kind=pb.REPO_KIND_DATASET, name=name, versioning=pb.VERSIONING_DVS, source=source)))

    def settled() -> pb.Repo | None:
        repo = client.call(client.repos.GetRepo, pb.GetRepoRequest(kind=pb.REPO_KIND_DATASET, name=name))
        return repo if repo.status in (pb.REPO_STATUS_READY, pb.REPO_STATUS_FAILED) else None

    return wait_for(settled, 60, f"the import of {name}")


def test_git_does_not_follow_a_redirect_past_the_host_check(mallory: Client, redirector: Server,
                                                             internal: Server) -> None:
    repo = _import(mallory, "ssrf-git", pb.Source(git=pb.GitSource(url=f"http://127.0.0.1:{redirector.port}/r.git")))
    assert repo.status == pb.REPO_STATUS_FAILED and "redirects are not followed" in repo.status_reason
    assert redirector.seen and internal.seen == []


def test_a_url_import_does_not_follow_a_redirect_past_the_host_check(mallory: Client, redirector: Server,
                                                                     internal: Server) -> None:
    url = f"http://127.0.0.1:{redirector.port}/dataset.zip"
    repo = _import(mallory, "ssrf-url", pb.Source(url=pb.UrlSource(url=url)))
    assert repo.status == pb.REPO_STATUS_FAILED and "0.0.0.0" in repo.status_reason
    assert redirector.seen and internal.seen == []


def test_an_s3_import_does_not_follow_a_redirect_past_the_host_check(mallory: Client, redirector: Server,
                                                                     internal: Server) -> None:
    source = pb.S3Source(bucket="data", endpoint=f"http://127.0.0.1:{redirector.port}")
    repo = _import(mallory, "ssrf-s3", pb.Source(s3=source))
    assert repo.status == pb.REPO_STATUS_FAILED
    assert redirector.seen and internal.seen == []


@pytest.fixture
def banner_port() -> Iterator[int]:
    """A port inside that speaks another protocol: it sends its banner to whoever connects."""
    with banner_server(BANNER) as port:
        yield port


def test_a_webhook_does_not_read_back_what_an_internal_port_answers(mallory: Client,
                                                                    banner_port: int) -> None:
    hook = gw.Webhook(name="scan", url=f"http://127.0.0.1:{banner_port}/", types=["io.shipyard.project.*"])
    mallory.call(mallory.webhooks.CreateWebhook,
                 gw.CreateWebhookRequest(webhook=hook, secret="whsec-scan-4b1d7e0c93a2"))
    mallory.call(mallory.projects.CreateProject, projects_pb2.CreateProjectRequest(
        project=projects_pb2.Project(name="scan-trigger")))

    def failed() -> gw.Webhook | None:
        webhook = mallory.call(mallory.webhooks.GetWebhook, gw.GetWebhookRequest(name="scan"))
        return webhook if webhook.last_error else None

    webhook = wait_for(failed, 60, "the delivery to fail")
    assert "pop3" not in webhook.last_error and "secret" not in webhook.last_error
    assert webhook.last_error == "not an HTTP response"
    letters = mallory.call(mallory.webhooks.ListDeadLetters, gw.ListDeadLettersRequest(name="scan"))
    assert all(letter.last_error == "not an HTTP response" for letter in letters.dead_letters)

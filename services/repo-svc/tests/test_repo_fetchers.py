"""The fetch adapters' safety: secrets reach git only through askpass or a 0600 key file; every
connection goes to an address that was checked (resolved once, the name kept for Host and TLS);
git follows no redirect and uses only its URL's transport; URL imports check every redirect hop;
S3 follows no redirect."""

from __future__ import annotations

import http.server
import ipaddress
import os
import re
import socket
import subprocess
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from shipyard_repo.adapters.fetchers import Fetchers, source_egress
from shipyard_repo.adapters.fetchers import git as git_fetch
from shipyard_repo.adapters.fetchers.files import MAX_REDIRECTS, UrlFetch
from shipyard_repo.adapters.fetchers.git import GitTarget, _git_config, _git_env, _pinned_url, git_target
from shipyard_repo.app.imports import FetchFailed
from shipyard_repo.domain.sources import GitSource, S3Source, UrlSource

from shipyard.kit.addresses import IPAddress
from shipyard.kit.egress import Egress
from tests.support.egress import Answers, banner_server, only_127_0_0_1

SECRET = "ghp_very-secret-token"
BANNER = b"SSH-2.0-OpenSSH_9.6 secret-host-7f3a\r\n"
GITHUB = git_target("https://github.com/acme/p.git")
GITHUB_IPS: list[IPAddress] = [ipaddress.ip_address("140.82.121.4")]




def fetchers(*answers: list[str]) -> tuple[Fetchers, Answers]:
    stub = Answers(list(answers) or [["127.0.0.2"]])
    return Fetchers(allow_private=True, egress=Egress(only_127_0_0_1, stub)), stub


# --- secrets --------------------------------------------------------------------------------


def test_https_secrets_go_through_askpass_never_the_command_line(tmp_path: Path) -> None:
    env = _git_env(tmp_path, GITHUB, GITHUB_IPS, SECRET, "alice")
    askpass = env["GIT_ASKPASS"]
    assert os.stat(askpass).st_mode & 0o777 == 0o700
    assert SECRET not in Path(askpass).read_text()  # the script reads it from its environment

    def answer(prompt: str) -> str:
        return subprocess.run(
            [askpass, prompt], env=env, capture_output=True, text=True, check=True
        ).stdout.strip()

    assert answer("Username for 'https://github.com': ") == "alice"
    assert answer("Password for 'https://alice@github.com': ") == SECRET
    assert env["GIT_TERMINAL_PROMPT"] == "0"


def test_a_token_without_a_username_uses_the_token_convention(tmp_path: Path) -> None:
    env = _git_env(tmp_path, GITHUB, GITHUB_IPS, SECRET, "")
    assert env["SHIPYARD_GIT_USER"] == "x-access-token"


def test_ssh_keys_go_to_a_private_file_named_in_the_ssh_command(tmp_path: Path) -> None:
    target = git_target("git@github.com:acme/p.git")
    env = _git_env(tmp_path, target, GITHUB_IPS, "-----BEGIN OPENSSH PRIVATE KEY-----\nk\n", "")
    key = tmp_path / "id_key"
    assert os.stat(key).st_mode & 0o777 == 0o600
    assert f"-i {key}" in env["GIT_SSH_COMMAND"] and "BatchMode=yes" in env["GIT_SSH_COMMAND"]
    assert "PRIVATE KEY" not in env["GIT_SSH_COMMAND"]


def test_no_secret_no_askpass_and_no_key(tmp_path: Path) -> None:
    env = _git_env(tmp_path, GITHUB, GITHUB_IPS, None, "")
    assert "GIT_ASKPASS" not in env and "GIT_SSH_COMMAND" not in env
    ssh = _git_env(tmp_path, git_target("ssh://git@github.com/acme/p.git"), GITHUB_IPS, None, "")
    assert "-i " not in ssh["GIT_SSH_COMMAND"] and not (tmp_path / "id_key").exists()


# --- where git may go -------------------------------------------------------------------------


@pytest.mark.parametrize(("url", "target"), [
    ("https://Git.Example.com:8443/o/r.git", GitTarget("https", "git.example.com", 8443)),
    ("http://git.example.com/o/r.git", GitTarget("http", "git.example.com", 80)),
    ("ssh://git@[2001:db8::1]:2222/o/r.git", GitTarget("ssh", "2001:db8::1", 2222)),
    ("git@GitHub.com:o/r.git", GitTarget("ssh", "github.com", 22)),
    ("git@[2001:db8::1]:o/r.git", GitTarget("ssh", "2001:db8::1", 22)),
    ("git://git.example.com/r.git", GitTarget("git", "git.example.com", 9418)),
    ("file:///srv/git/r.git", GitTarget("file", "", 0)),
])
def test_the_git_target_checked_after_dns(url: str, target: GitTarget) -> None:
    assert git_target(url) == target


def _settings(env: dict[str, str]) -> list[tuple[str, str]]:
    count = int(env["GIT_CONFIG_COUNT"])
    return [(env[f"GIT_CONFIG_KEY_{i}"], env[f"GIT_CONFIG_VALUE_{i}"]) for i in range(count)]


def test_git_uses_only_its_urls_transport_follows_no_redirect_and_resolves_to_checked_addresses() -> None:
    both = [ipaddress.ip_address("140.82.121.4"), ipaddress.ip_address("2606:50c0::1")]
    assert _settings(_git_config(GITHUB, both)) == [
        ("protocol.allow", "never"),
        ("protocol.https.allow", "always"),
        ("http.followRedirects", "false"),
        ("http.curloptResolve", "github.com:443:140.82.121.4,[2606:50c0::1]"),
    ]
    ssh = _settings(_git_config(git_target("git@github.com:o/r.git"), both))
    assert ("protocol.ssh.allow", "always") in ssh and not any(k == "http.curloptResolve" for k, _ in ssh)
    assert ("protocol.file.allow", "always") in _settings(_git_config(git_target("file:///srv/r.git"), []))


def test_ssh_connects_to_the_checked_address_keeping_the_name_for_the_host_key(tmp_path: Path) -> None:
    env = _git_env(tmp_path, git_target("ssh://git@git.example.com/o/r.git"), GITHUB_IPS, None, "")
    assert "HostName=140.82.121.4" in env["GIT_SSH_COMMAND"]
    assert "HostKeyAlias=git.example.com" in env["GIT_SSH_COMMAND"]


def test_the_git_daemon_protocol_is_given_the_checked_address() -> None:
    url = "git://git.example.com/r.git"
    assert _pinned_url(url, git_target(url), GITHUB_IPS) == "git://140.82.121.4:9418/r.git"
    v6 = [ipaddress.ip_address("2001:db8::1")]
    assert _pinned_url(url, git_target(url), v6) == "git://[2001:db8::1]:9418/r.git"
    https = "https://github.com/o/r.git"
    assert _pinned_url(https, git_target(https), GITHUB_IPS) == https  # curl is pinned instead


# --- names resolving inside -------------------------------------------------------------------


@pytest.mark.parametrize("source", [
    GitSource("https://data.example.org/o/r.git"),
    GitSource("git@data.example.org:o/r.git"),
    GitSource("git://data.example.org/r.git"),
    UrlSource("https://data.example.org/d.csv"),
    S3Source("bucket", endpoint="https://data.example.org"),
])
async def test_a_public_name_that_resolves_to_loopback_is_refused(source: object, tmp_path: Path) -> None:
    stub = Answers([["127.0.0.1"]])
    refused = r"data\.example\.org resolves to 127\.0\.0\.1: 127\.0\.0\.1 is a loopback"
    with pytest.raises(FetchFailed, match=refused):
        await Fetchers(False, egress=Egress(source_egress(False).policy, stub)).fetch(source, tmp_path, None)  # type: ignore[arg-type]
    assert stub.asked == ["data.example.org"]


async def test_a_name_that_resolves_to_the_metadata_service_is_refused_even_when_private_is_allowed(
        tmp_path: Path) -> None:
    stub = Answers([["169.254.169.254"]])
    refused = r"data\.example\.org resolves to 169\.254\.169\.254: .* cloud metadata service's address"
    egress = Egress(source_egress(True).policy, stub)
    with pytest.raises(FetchFailed, match=refused):
        await Fetchers(True, egress=egress).fetch(UrlSource("http://data.example.org/d"), tmp_path, None)


# --- real servers on loopback ---------------------------------------------------------------------


@dataclass
class Server:
    """A stdlib HTTP server in a thread answering GETs from ``routes`` (path → status, headers,
    body); 404 otherwise. ``seen`` keeps each request's Host header and path."""

    host: str
    routes: dict[str, tuple[int, dict[str, str], bytes]] = field(default_factory=dict)
    seen: list[tuple[str, str]] = field(default_factory=list)

    def __post_init__(self) -> None:
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                outer.seen.append((self.headers.get("Host", ""), self.path))
                status, headers, body = outer.routes.get(self.path.split("?")[0], (404, {}, b""))
                self.send_response(status)
                for name, value in {**headers, "Content-Length": str(len(body))}.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self._server = http.server.ThreadingHTTPServer((self.host, 0), Handler)
        self.port = self._server.server_address[1]
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def url(self, path: str) -> str:
        return f"http://{self.host}:{self.port}{path}"

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture
def outside() -> Iterator[Server]:
    """A server the tests' policy allows (127.0.0.1)."""
    server = Server("127.0.0.1")
    yield server
    server.stop()


@pytest.fixture
def inside() -> Iterator[Server]:
    """An internal service: the tests' policy refuses its address (127.0.0.2)."""
    server = Server("127.0.0.2", routes={"/secret": (200, {}, b"the inside's secret")})
    yield server
    server.stop()


def _redirect(to: str, status: int = 302) -> tuple[int, dict[str, str], bytes]:
    return status, {"Location": to}, b""


async def test_git_follows_no_redirect_to_another_host(outside: Server, inside: Server,
                                                       tmp_path: Path) -> None:
    outside.routes["/r.git/info/refs"] = _redirect(inside.url("/r.git/info/refs"), 301)
    fetch, _ = fetchers()
    with pytest.raises(FetchFailed, match=r"redirect \(HTTP 301\), and redirects are not followed"):
        await fetch.fetch(GitSource(outside.url("/r.git")), tmp_path, None)
    assert [path for _, path in outside.seen] == ["/r.git/info/refs?service=git-upload-pack"]
    assert inside.seen == []


async def test_git_connects_to_the_checked_address_and_keeps_the_name(outside: Server,
                                                                      tmp_path: Path) -> None:
    # A rebinding name: checked as 127.0.0.1, then it would point inside; git must not ask again.
    fetch, stub = fetchers(["127.0.0.1"], ["127.0.0.2"])
    with pytest.raises(FetchFailed, match="git clone failed"):  # the stand-in is no git server
        await fetch.fetch(GitSource(f"http://repo.example.test:{outside.port}/r.git"), tmp_path, None)
    assert stub.asked == ["repo.example.test"]
    assert outside.seen[0][0] == f"repo.example.test:{outside.port}"


async def test_a_url_import_follows_checked_redirects(outside: Server, tmp_path: Path) -> None:
    outside.routes["/latest"] = _redirect("/v2/data.csv")
    outside.routes["/v2/data.csv"] = (200, {}, b"a,b\n")
    into = tmp_path / "content"
    into.mkdir()
    fetch, _ = fetchers()
    await fetch.fetch(UrlSource(outside.url("/latest")), into, None)
    assert (into / "latest").read_bytes() == b"a,b\n"


@pytest.mark.parametrize("where", ["address", "name"])
async def test_a_url_import_refuses_a_redirect_inside(outside: Server, inside: Server, tmp_path: Path,
                                                     where: str) -> None:
    hop = inside.url("/secret") if where == "address" else f"http://inside.example.test:{inside.port}/secret"
    outside.routes["/data.csv"] = _redirect(hop, 307)
    fetch, _ = fetchers(["127.0.0.2"])
    with pytest.raises(FetchFailed, match=re.escape("127.0.0.2")):
        await fetch.fetch(UrlSource(outside.url("/data.csv")), tmp_path, None)
    assert inside.seen == []


async def test_a_url_import_gives_up_after_a_few_redirects(outside: Server, tmp_path: Path) -> None:
    outside.routes["/loop"] = _redirect("/loop")
    fetch, _ = fetchers()
    with pytest.raises(FetchFailed, match=f"more than {MAX_REDIRECTS} redirects"):
        await fetch.fetch(UrlSource(outside.url("/loop")), tmp_path, None)
    assert len(outside.seen) == MAX_REDIRECTS + 1


@pytest.mark.parametrize(("location", "words"), [
    ("http://example.com/d.csv", "from https to http"),
    ("ftp://example.com/d.csv", "only http"),
    ("https://localhost/d.csv", "loopback name"),
    ("https://ci/d.csv", "single-label"),
    ("https://metadata.google.internal/", "metadata"),
])
def test_where_a_url_import_may_not_be_redirected(location: str, words: str) -> None:
    with pytest.raises(FetchFailed, match=words):
        UrlFetch(source_egress(False), allow_private=False)._next_hop("https://example.org/d.csv", location)


async def test_s3_follows_no_redirect(outside: Server, inside: Server, tmp_path: Path) -> None:
    outside.routes["/bucket"] = _redirect(inside.url("/secret"), 307)
    fetch, _ = fetchers()
    with pytest.raises(FetchFailed, match="S3"):
        await fetch.fetch(S3Source("bucket", endpoint=f"http://127.0.0.1:{outside.port}"), tmp_path, None)
    assert outside.seen and inside.seen == []


async def test_s3_connects_to_the_checked_address_and_keeps_the_name(outside: Server, tmp_path: Path) -> None:
    fetch, stub = fetchers(["127.0.0.1"], ["127.0.0.2"])
    with pytest.raises(FetchFailed, match="S3"):  # the stand-in is no S3 server
        source = S3Source("bucket", endpoint=f"http://s3.example.test:{outside.port}")
        await fetch.fetch(source, tmp_path, None)
    assert stub.asked == ["s3.example.test"]
    assert {host for host, _ in outside.seen} == {f"s3.example.test:{outside.port}"}


async def test_a_git_too_old_to_be_pinned_does_not_clone_over_http_by_name(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(git_fetch, "git_version", lambda: (2, 34))
    fetch, stub = fetchers(["127.0.0.1"])
    with pytest.raises(FetchFailed, match=r"git 2\.34 cannot be held to the address that was checked"):
        await fetch.fetch(GitSource("https://repo.example.test/o/r.git"), tmp_path, None)
    assert stub.asked == []


def _unresolvable(host: str, port: int) -> Sequence[str]:
    raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")


async def test_a_name_that_does_not_resolve_says_so(tmp_path: Path) -> None:
    fetch = Fetchers(True, egress=Egress(only_127_0_0_1, _unresolvable))
    with pytest.raises(FetchFailed, match=r"cannot resolve nowhere\.example\.test"):
        await fetch.fetch(UrlSource("https://nowhere.example.test/d.csv"), tmp_path, None)
    with pytest.raises(FetchFailed, match="S3: cannot resolve the endpoint's host"):
        await fetch.fetch(S3Source("bucket", endpoint="https://nowhere.example.test"), tmp_path, None)


@pytest.fixture
def banner_port() -> Iterator[int]:
    """A port that speaks another protocol: it sends its banner to whoever connects."""
    with banner_server(BANNER) as port:
        yield port


@pytest.mark.parametrize("kind", ["url", "s3"])
async def test_what_an_internal_port_answers_is_never_echoed(banner_port: int, tmp_path: Path,
                                                             kind: str) -> None:
    fetch, _ = fetchers()
    endpoint = f"http://127.0.0.1:{banner_port}"
    source = UrlSource(f"{endpoint}/d.csv") if kind == "url" else S3Source("bucket", endpoint=endpoint)
    with pytest.raises(FetchFailed, match="not an HTTP response") as failed:
        await fetch.fetch(source, tmp_path, None)
    assert "secret" not in str(failed.value)

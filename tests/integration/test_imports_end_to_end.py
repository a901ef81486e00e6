"""Imports from real sources: a local git repository (file://, branch and pinned commit) and an
HTTP server on loopback — on a stack whose operator allows private sources, as a test lab would."""

from __future__ import annotations

import http.server
import io
import socket
import subprocess
import threading
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import git

from shipyard.client.connection import Client
from shipyard.contracts.repo.v1 import repos_pb2 as pb
from shipyard.local.harness import Stack, wait_for


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """A stack that may reach loopback sources (SHIPYARD_ALLOW_PRIVATE_SOURCES)."""
    running = Stack(
        tmp_path_factory.mktemp("stack") / "data", env={"SHIPYARD_ALLOW_PRIVATE_SOURCES": "true"}
    ).start()
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture(scope="module")
def git_repo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """A repository with two commits on main; the first one's id."""
    root = tmp_path_factory.mktemp("git") / "data.git"
    root.mkdir()
    git(root, "init", "--quiet", "--initial-branch=main")
    (root / "data").mkdir()
    (root / "data" / "a.csv").write_text("1\n")
    git(root, "add", ".")
    git(root, "commit", "--quiet", "-m", "one")
    first = git(root, "rev-parse", "HEAD")
    (root / "data" / "b.csv").write_text("2\n")
    git(root, "add", ".")
    git(root, "commit", "--quiet", "-m", "two")
    return root, first


def _ready(admin: Client, name: str) -> pb.Repo:
    def settled() -> bool:
        repo = admin.call(admin.repos.GetRepo, pb.GetRepoRequest(kind=pb.REPO_KIND_DATASET, name=name))
        return repo.status in (pb.REPO_STATUS_READY, pb.REPO_STATUS_FAILED)

    wait_for(settled, 60, f"the import of {name}")
    return admin.call(admin.repos.GetRepo, pb.GetRepoRequest(kind=pb.REPO_KIND_DATASET, name=name))


def _files(admin: Client, name: str) -> list[str]:
    reply = admin.call(
        admin.repos.ListVersionFiles,
        pb.ListVersionFilesRequest(kind=pb.REPO_KIND_DATASET, repo=name, number=1),
    )
    return [f.path for f in reply.files]


def _create(admin: Client, name: str, source: pb.Source) -> None:
    admin.call(
        admin.repos.CreateRepo,
        pb.CreateRepoRequest(
            repo=pb.Repo(kind=pb.REPO_KIND_DATASET, name=name, versioning=pb.VERSIONING_DVS, source=source)
        ),
    )


def test_git_imports_a_branch_a_folder_and_a_pinned_commit(admin: Client, git_repo: tuple[Path, str]) -> None:
    root, first = git_repo
    _create(admin, "from-git", pb.Source(git=pb.GitSource(url=f"file://{root}", branch="main", path="data")))
    _create(admin, "pinned", pb.Source(git=pb.GitSource(url=f"file://{root}", commit=first)))
    assert _ready(admin, "from-git").status == pb.REPO_STATUS_READY
    assert _files(admin, "from-git") == ["a.csv", "b.csv"]
    assert _ready(admin, "pinned").status == pb.REPO_STATUS_READY
    assert _files(admin, "pinned") == ["data/a.csv"]


def test_git_imports_from_a_git_daemon(admin: Client, git_repo: tuple[Path, str]) -> None:
    root, _ = git_repo
    port = _free_port()
    daemon = subprocess.Popen(
        [
            "git",
            "daemon",
            "--export-all",
            "--reuseaddr",
            f"--base-path={root.parent}",
            "--listen=127.0.0.1",
            f"--port={port}",
            str(root.parent),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for(lambda: _accepts(port), 15, "git daemon to listen")
        _create(admin, "from-daemon", pb.Source(git=pb.GitSource(url=f"git://127.0.0.1:{port}/{root.name}")))
        assert _ready(admin, "from-daemon").status == pb.REPO_STATUS_READY
    finally:
        daemon.terminate()
        daemon.wait(10)
    assert _files(admin, "from-daemon") == ["data/a.csv", "data/b.csv"]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _accepts(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except OSError:
        return False
    return True


def test_a_failed_import_says_why(admin: Client, tmp_path: Path) -> None:
    _create(admin, "no-such", pb.Source(git=pb.GitSource(url=f"file://{tmp_path}/missing.git")))
    failed = _ready(admin, "no-such")
    assert failed.status == pb.REPO_STATUS_FAILED and "git clone failed" in failed.status_reason


def test_a_url_archive_is_downloaded_and_extracted(admin: Client) -> None:
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("images/1.png", b"png")
        z.writestr("labels.txt", b"1")
    body = archive.getvalue()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/images.zip"
        _create(admin, "from-url", pb.Source(url=pb.UrlSource(url=url, extract=True)))
        assert _ready(admin, "from-url").status == pb.REPO_STATUS_READY
    finally:
        server.shutdown()
    assert _files(admin, "from-url") == ["images/1.png", "labels.txt"]

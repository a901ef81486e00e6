"""Attacks on the console's upload: a zip bomb posted with a made-up cookie (the console used to
check only that a cookie was there, then spool and extract gigabytes), a signed-in user's zip bomb,
an upload past what one user may spool. Each is refused before it costs the platform its disk."""

from __future__ import annotations

import http.client
import uuid
import zipfile
from collections.abc import Iterator
from http.cookies import SimpleCookie
from pathlib import Path
from urllib.parse import urlencode, urlsplit

import pytest

from shipyard.client.connection import Client
from shipyard.contracts.gateway.v1 import gateway_pb2
from shipyard.contracts.repo.v1 import repos_pb2 as pb
from shipyard.local.harness import Stack

ZEROS = 1 << 30  # a gibibyte of zeros: deflate makes about a megabyte of it
SPOOL_LIMIT = 8 << 20


@pytest.fixture(scope="module")
def spool_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("gateway-tmp")


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, spool_dir: Path) -> Iterator[Stack]:
    env = {"SHIPYARD_PATH_IMPORT_ROOTS": "", "TMPDIR": str(spool_dir),
           "SHIPYARD_UPLOAD_MAX_BYTES": str(SPOOL_LIMIT)}
    with Stack(tmp_path_factory.mktemp("stack") / "data", env=env) as running:
        yield running


def _zip_of_zeros(path: Path, size: int) -> bytes:
    chunk = bytes(1 << 20)
    with (zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as zf,
          zf.open("zeros.bin", "w", force_zip64=True) as member):
        for _ in range(size // len(chunk)):
            member.write(chunk)
    return path.read_bytes()


@pytest.fixture(scope="module")
def bomb(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """A zip of one file of a gibibyte of zeros (about a megabyte)."""
    return _zip_of_zeros(tmp_path_factory.mktemp("bomb") / "bomb.zip", ZEROS)


@pytest.fixture(scope="module")
def small_bomb(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """64 MiB of zeros (about 64 KiB): within what one user may spool, a thousand times its size."""
    return _zip_of_zeros(tmp_path_factory.mktemp("bomb") / "small.zip", 64 << 20)


@pytest.fixture(scope="module")
def dana(stack: Stack, admin: Client) -> str:
    """A data scientist's console cookie, and her dataset ``dana-data`` (version 1, empty)."""
    made = admin.call(admin.identity.CreateUser, gateway_pb2.CreateUserRequest(
        user=gateway_pb2.User(name="upload-dana", roles=[gateway_pb2.ROLE_DATA_SCIENTIST])))
    as_dana = stack.client(made.token)
    as_dana.call(as_dana.repos.CreateRepo, pb.CreateRepoRequest(repo=pb.Repo(
        kind=pb.REPO_KIND_DATASET, name="dana-data", versioning=pb.VERSIONING_DVS,
        source=pb.Source(none=pb.NoSource()))))
    as_dana.close()
    status, headers, _ = _send(stack, "POST", "/login", urlencode({"token": made.token}).encode(),
                               {"Content-Type": "application/x-www-form-urlencoded"})
    assert status == 303
    for header in headers.get_all("Set-Cookie") or []:
        jar: SimpleCookie = SimpleCookie(header)
        if "shipyard_token" in jar:
            return f"shipyard_token={jar['shipyard_token'].value}"
    raise AssertionError("signing in set no cookie")


def _send(stack: Stack, method: str, path: str, body: bytes,
          headers: dict[str, str]) -> tuple[int, http.client.HTTPMessage, str]:
    connection = http.client.HTTPConnection("127.0.0.1", urlsplit(stack.http_url).port, timeout=120)
    try:
        connection.request(method, path, body=body, headers=headers)
        reply = connection.getresponse()
        return reply.status, reply.headers, reply.read().decode(errors="replace")
    finally:
        connection.close()


def _upload(stack: Stack, cookie: str, repo: str, filename: str, data: bytes,
            extract: bool) -> tuple[int, http.client.HTTPMessage, str]:
    boundary = uuid.uuid4().hex
    parts = [f'--{boundary}\r\nContent-Disposition: form-data; name="extract"\r\n\r\non\r\n'.encode()
             ] if extract else []
    parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="files"; filename="{filename}"\r\n'
                 f"Content-Type: application/octet-stream\r\n\r\n".encode() + data + b"\r\n")
    body = b"".join(parts) + f"--{boundary}--\r\n".encode()
    return _send(stack, "POST", f"/repos/datasets/{repo}/upload", body,
                 {"Content-Type": f"multipart/form-data; boundary={boundary}", "Cookie": cookie})


def _written_by(pid: int) -> int:
    """Bytes the process has passed to write() and friends so far."""
    io = dict(line.split(": ") for line in Path(f"/proc/{pid}/io").read_text().splitlines())
    return int(io["wchar"])


def _spools(spool_dir: Path) -> list[Path]:
    return sorted(spool_dir.glob("shipyard-console-*"))


def _versions(admin: Client, repo: str) -> list[int]:
    found = admin.call(admin.repos.ListVersions, pb.ListVersionsRequest(kind=pb.REPO_KIND_DATASET, repo=repo))
    return [v.number for v in found.versions]


def test_a_zip_bomb_with_a_made_up_cookie_is_sent_to_sign_in_unread(stack: Stack, bomb: bytes,
                                                                     spool_dir: Path) -> None:
    gateway = stack.pid("gateway")
    before = _written_by(gateway)

    status, headers, _ = _upload(stack, "shipyard_token=sy_made.up", "anything", "bomb.zip", bomb,
                                 extract=True)

    assert status == 303 and headers["Location"].startswith("/login")
    assert _written_by(gateway) - before < len(bomb) // 2  # nothing of it was spooled, let alone extracted
    assert _spools(spool_dir) == []


def test_a_signed_in_zip_bomb_is_refused_naming_the_ratio(stack: Stack, admin: Client, dana: str,
                                                          bomb: bytes, spool_dir: Path) -> None:
    gateway = stack.pid("gateway")
    before = _written_by(gateway)

    status, _, page = _upload(stack, dana, "dana-data", "bomb.zip", bomb, extract=True)

    assert status == 413, page
    assert "archive expands to more than" in page
    assert "SHIPYARD_EXTRACT_MAX_RATIO=100" in page and f"SHIPYARD_UPLOAD_MAX_BYTES={SPOOL_LIMIT}" in page
    assert _written_by(gateway) - before < 4 * len(bomb)  # the archive spooled, nothing extracted
    assert _versions(admin, "dana-data") == [1]
    assert _spools(spool_dir) == []


def test_an_archive_within_the_byte_limit_is_held_to_the_ratio(stack: Stack, admin: Client, dana: str,
                                                               small_bomb: bytes, spool_dir: Path) -> None:
    status, _, page = _upload(stack, dana, "dana-data", "small.zip", small_bomb, extract=True)

    assert status == 413, page
    assert "archive expands to more than 100 times its size" in page
    assert _versions(admin, "dana-data") == [1]
    assert _spools(spool_dir) == []


def test_an_upload_past_what_one_user_may_spool_is_refused(stack: Stack, admin: Client, dana: str,
                                                           spool_dir: Path) -> None:
    status, _, page = _upload(stack, dana, "dana-data", "big.bin", b"x" * (SPOOL_LIMIT + (1 << 20)),
                              extract=False)

    assert status == 413, page
    assert "SHIPYARD_UPLOAD_MAX_BYTES" in page
    assert _versions(admin, "dana-data") == [1]
    assert _spools(spool_dir) == []


def test_a_small_upload_still_makes_a_version(stack: Stack, admin: Client, dana: str) -> None:
    status, headers, page = _upload(stack, dana, "dana-data", "labels.csv", b"a,b\n1,2\n", extract=False)

    assert status == 303, page
    assert headers["Location"] == "/repos/datasets/dana-data/versions/2"
    assert sorted(_versions(admin, "dana-data")) == [1, 2]

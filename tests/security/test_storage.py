"""Attacks on the platform's disk: a data scientist uploads blobs no version will ever name, as
many as they like (there was no limit, and nothing ever deleted them), and a non-operator asks
for a garbage collection. Uploads past the user's quota of pending uploads are refused before
anything is stored; an operator's collection deletes the unreferenced blobs older than the grace
period and keeps every blob of every version (each still pulls); deleting a version frees what
only it named."""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from shipyard.client.connection import Client, ClientError
from shipyard.client.transfer import pull, push, read_manifest
from shipyard.contracts.repo.v1 import repos_pb2 as pb
from shipyard.kit.manifest import scan
from shipyard.local.harness import Stack, wait_for
from tests.support.users import signed_in

QUOTA = 1 << 20
DAY = 24 * 3600
DATASET = pb.REPO_KIND_DATASET


@pytest.fixture(scope="module")
def hold_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """While this file exists, a collection stops after each blob it deletes (a failpoint)."""
    return tmp_path_factory.mktemp("failpoints") / "gc.hold"


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, hold_file: Path) -> Iterator[Stack]:
    env = {"SHIPYARD_PATH_IMPORT_ROOTS": "", "SHIPYARD_PENDING_UPLOAD_MAX_BYTES": str(QUOTA),
           "SHIPYARD_GC_INTERVAL_S": "0",  # collections only when asked: the test decides when
           "SHIPYARD_FAILPOINTS": f"gc.hold={hold_file}"}
    with Stack(tmp_path_factory.mktemp("stack") / "data", env=env) as running:
        yield running


@pytest.fixture(scope="module")
def mallory(stack: Stack, admin: Client) -> Iterator[Client]:
    client = signed_in(stack, admin, "mallory")
    yield client
    client.close()


@pytest.fixture(scope="module")
def alice(stack: Stack, admin: Client) -> Iterator[Client]:
    client = signed_in(stack, admin, "alice")
    yield client
    client.close()


def _put(stack: Stack, token: str, data: bytes) -> tuple[int, dict[str, str]]:
    """PUT /api/blobs/<sha256> as a client does; the status and the JSON body."""
    url = urlsplit(stack.http_url)
    conn = http.client.HTTPConnection(url.hostname or "", url.port, timeout=60)
    try:
        conn.request("PUT", f"/api/blobs/{hashlib.sha256(data).hexdigest()}", body=data,
                     headers={"Authorization": f"Bearer {token}", "Content-Length": str(len(data))})
        reply = conn.getresponse()
        return reply.status, json.loads(reply.read() or b"{}")
    finally:
        conn.close()


def _blob_file(stack: Stack, digest: str) -> Path:
    return stack.data_dir / "blobs" / "sha256" / digest[:2] / digest[2:4] / digest


def _stored(stack: Stack, data: bytes) -> bool:
    return _blob_file(stack, hashlib.sha256(data).hexdigest()).is_file()


def _age_every_blob(stack: Stack) -> None:
    """Make every stored blob two days old: past the default grace period, without waiting."""
    old = time.time() - 2 * DAY
    for path in (stack.data_dir / "blobs" / "sha256").glob("*/*/*"):
        os.utime(path, (old, old))


def _dataset(client: Client, name: str) -> None:
    client.call(client.repos.CreateRepo, pb.CreateRepoRequest(repo=pb.Repo(
        kind=DATASET, name=name, versioning=pb.VERSIONING_DVS, source=pb.Source(none=pb.NoSource()))))


def _push(client: Client, name: str, root: Path, files: dict[str, bytes]) -> pb.Version:
    root.mkdir(parents=True)
    for path, data in files.items():
        (root / path).write_bytes(data)
    return push(client, DATASET, name, root, scan(root)).version


def _pulls(client: Client, version: pb.Version, dest: Path, files: dict[str, bytes]) -> None:
    manifest = read_manifest(client, version.manifest_digest)
    pull(client, manifest, dest)
    assert {p: (dest / p).read_bytes() for p in files} == files


def _collect(client: Client, dry_run: bool = False) -> pb.CollectGarbageResponse:
    return client.call(client.repos.CollectGarbage, pb.CollectGarbageRequest(dry_run=dry_run))


def test_unreferenced_uploads_past_the_quota_are_refused_and_nothing_is_stored(
        stack: Stack, mallory: Client) -> None:
    token = mallory.credentials.token
    first, second = os.urandom(QUOTA // 2 + 1), os.urandom(QUOTA // 2 + 1)
    assert _put(stack, token, first)[0] == 201
    status, body = _put(stack, token, second)
    assert status == 413 and body["code"] == "RESOURCE_EXHAUSTED"
    assert "mallory has" in body["message"] and "no version names yet" in body["message"]
    assert not _stored(stack, second)
    assert _put(stack, token, first)[0] == 201  # the same blob again takes no more room


def test_the_quota_cannot_be_reserved_around_by_a_direct_call(mallory: Client) -> None:
    with pytest.raises(ClientError) as refused:
        mallory.call(mallory.repos.ReserveUpload, pb.ReserveUploadRequest(digest="0" * 64, size_bytes=0))
    assert refused.value.code == "PERMISSION_DENIED"


def test_a_version_settles_its_uploads_so_the_next_push_fits(alice: Client, tmp_path: Path) -> None:
    _dataset(alice, "alice-big")
    for n in range(2):  # each push alone is most of the quota
        files = {"data.bin": os.urandom(QUOTA * 3 // 4)}
        version = _push(alice, "alice-big", tmp_path / f"v{n}", files)
        _pulls(alice, version, tmp_path / f"pulled{n}", files)


def test_a_non_operator_cannot_collect_garbage(stack: Stack, mallory: Client) -> None:
    garbage = os.urandom(1000)
    assert _put(stack, mallory.credentials.token, garbage)[0] == 201
    _age_every_blob(stack)
    with pytest.raises(ClientError) as refused:
        _collect(mallory)
    assert refused.value.code == "PERMISSION_DENIED"
    assert _stored(stack, garbage)


def test_garbage_is_collected_and_every_version_still_pulls(
        stack: Stack, admin: Client, alice: Client, tmp_path: Path) -> None:
    shared = os.urandom(3000)
    digits = {"shared.bin": shared, "digits.bin": os.urandom(2000)}
    fonts = {"shared.bin": shared, "fonts.bin": os.urandom(1000)}
    _dataset(alice, "digits")
    _dataset(alice, "fonts")
    digits_v2 = _push(alice, "digits", tmp_path / "digits", digits)
    fonts_v2 = _push(alice, "fonts", tmp_path / "fonts", fonts)
    garbage = os.urandom(5000)
    assert _put(stack, alice.credentials.token, garbage)[0] == 201
    _age_every_blob(stack)

    dry = _collect(admin, dry_run=True)
    assert dry.dry_run and dry.deleted_blobs >= 1 and _stored(stack, garbage)
    done = _collect(admin)
    assert done.deleted_blobs == dry.deleted_blobs and done.deleted_bytes >= len(garbage)
    assert not _stored(stack, garbage)
    _pulls(alice, digits_v2, tmp_path / "pulled-digits", digits)
    _pulls(alice, fonts_v2, tmp_path / "pulled-fonts", fonts)

    # Deleting a version frees what only it named; what another version names stays.
    alice.call(alice.repos.DeleteVersion, pb.DeleteVersionRequest(kind=DATASET, repo="digits", number=2))
    _age_every_blob(stack)
    assert _collect(admin).deleted_blobs == 2  # digits.bin and the version's manifest
    assert not _stored(stack, digits["digits.bin"])
    assert not _blob_file(stack, digits_v2.manifest_digest).is_file()
    assert _stored(stack, shared)
    _pulls(alice, fonts_v2, tmp_path / "pulled-fonts-again", fonts)


def _cli(stack: Stack, token: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "SHIPYARD_SERVER": stack.grpc_address, "SHIPYARD_TOKEN": token, "COLUMNS": "200"}
    return subprocess.run([sys.executable, "-m", "shipyard", *args], env=env, capture_output=True, text=True,
                          timeout=60)


def test_admin_gc_shows_what_it_freed_and_is_for_operators_only(
        stack: Stack, admin: Client, mallory: Client) -> None:
    refused = _cli(stack, mallory.credentials.token, "admin", "gc")
    assert refused.returncode != 0 and "PERMISSION_DENIED" in refused.stdout + refused.stderr
    garbage = os.urandom(4000)
    assert _put(stack, admin.credentials.token, garbage)[0] == 201
    _age_every_blob(stack)
    dry = _cli(stack, admin.credentials.token, "admin", "gc", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert "would be deleted" in dry.stdout and _stored(stack, garbage)
    done = _cli(stack, admin.credentials.token, "admin", "gc")
    assert done.returncode == 0, done.stderr
    assert "deleted (unreferenced)" in done.stdout and "kept: referenced" in done.stdout
    assert not _stored(stack, garbage)


def test_a_collection_killed_midway_loses_nothing_and_the_next_one_finishes(
        stack: Stack, admin: Client, alice: Client, hold_file: Path, tmp_path: Path) -> None:
    files = {"kept.bin": os.urandom(2000)}
    _dataset(alice, "survivor")
    version = _push(alice, "survivor", tmp_path / "survivor", files)
    garbage = [os.urandom(1000 + n) for n in range(3)]
    for blob in garbage:
        assert _put(stack, alice.credentials.token, blob)[0] == 201
    _age_every_blob(stack)

    outcome: list[str] = []

    def collect_until_killed() -> None:
        try:
            _collect(admin)
            outcome.append("finished")
        except ClientError as exc:
            outcome.append(exc.code)

    hold_file.touch()
    collecting = threading.Thread(target=collect_until_killed, daemon=True)
    collecting.start()
    wait_for(lambda: sum(_stored(stack, blob) for blob in garbage) == 2, 30, "the first blob deleted")
    stack.wait_restarted("repo-svc", stack.kill("repo-svc"))
    hold_file.unlink()
    collecting.join(timeout=60)
    assert outcome and outcome[0] != "finished"  # it died midway

    wait_for(lambda: _collect(admin), 30, "a collection by the restarted repo-svc")
    assert not any(_stored(stack, blob) for blob in garbage)
    _pulls(alice, version, tmp_path / "pulled", files)

"""The Shipyard side of ``python -m bench.repos``: versions pushed to a stack, timed step by step.

A version is created as ``shipyard dataset create NAME --upload DIR`` (or ``shipyard dataset push
NAME DIR``) does it, through the same library calls, in the benchmark's process, in one of two ways:

- ``path``: what the CLI does first when the platform runs on this machine and DIR is under its
  import roots: ``CreateRepo`` (first version only), then ``transfer.import_path``
  (CreateVersionFromPath: repo-svc walks DIR and reads each file once, hashing it while copying it
  into the blob store, then syncs and commits the version);
- ``upload``: what it does otherwise (a remote platform): ``transfer.scan_tree`` (hash with the
  per-directory hash cache under ``$XDG_CACHE_HOME``), ``transfer.push`` (FindMissingBlobs, HTTP
  PUT of the missing blobs and of the manifest to the gateway, CreateVersion).

The client's RPCs are timed one by one, so a version splits into its steps without touching the
client's code. One run of the CLI itself, as a subprocess, is timed for information.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from google.protobuf.message import Message
from minio import Minio
from minio.deleteobjects import DeleteObject

from shipyard.client import transfer
from shipyard.client.connection import Client, Credentials
from shipyard.contracts.repo.v1 import repos_pb2 as pb
from shipyard.local.harness import Stack

R = TypeVar("R", bound=Message)
RPC_TIMEOUT_S = 600.0
S3_BUCKET = "shipyard-bench"
PATH_STEP = "CreateVersionFromPath (platform: walk, read + sha256 + store, sync)"


class TimedClient(Client):
    """A client that notes when each unary RPC started and how long it took, by method."""

    def __init__(self, credentials: Credentials) -> None:
        super().__init__(credentials, timeout=RPC_TIMEOUT_S)
        self.rpcs: list[tuple[str, float, float]] = []  # (method, start, end), time.monotonic()

    def call(self, method: Callable[..., R], request: Message, timeout: float | None = None) -> R:
        """Call and time it."""
        start = time.monotonic()
        try:
            return super().call(method, request, timeout)
        finally:
            name = type(request).__name__.removesuffix("Request")
            self.rpcs.append((name, start, time.monotonic()))

    def seconds(self, name: str) -> float:
        """Seconds spent in calls of ``name``."""
        return sum(end - start for method, start, end in self.rpcs if method == name)

    def started(self, name: str) -> float | None:
        """When the last call of ``name`` started."""
        starts = [start for method, start, _ in self.rpcs if method == name]
        return starts[-1] if starts else None


@dataclass
class Pushed:
    """One version created, and where its time went."""

    version: int
    seconds: float
    window: tuple[float, float]
    steps: dict[str, float]  # step → seconds, in order
    files: int
    total_bytes: int
    hashed_bytes: int | None  # read by the client's scan (rest: hash cache); None: the platform read it
    uploaded_blobs: int  # file contents, not counting the manifest
    uploaded_bytes: int  # including the manifest
    manifest_bytes: int
    changed_bytes: int = 0  # of the files rewritten before this version (0 for a first version)
    via: str = "upload"  # or "path": the platform read the directory itself


@dataclass
class StoreRun:
    """A stack over one kind of blob store, and how to empty its blob store between runs."""

    label: str
    stack: Stack
    wipe: Callable[[], int]  # empties the blob store; how many blobs it removed
    extra: dict[str, str] = field(default_factory=dict)

    def client(self) -> TimedClient:
        """A timed client signed in as the stack's admin."""
        return TimedClient(Credentials(self.stack.grpc_address, self.stack.admin_token()))


def local_wipe(stack: Stack, graveyard: Path) -> Callable[[], int]:
    """Empty a local blob store under the running stack by moving ``<data>/blobs/sha256`` into
    ``graveyard`` (deleted at the end of the benchmark, not now: see ``bench.repos`` on why the
    benchmark deletes nothing while it measures)."""

    def wipe() -> int:
        blobs = stack.data_dir / "blobs" / "sha256"
        count = sum(len(names) for _, _, names in os.walk(blobs))
        if count:
            graveyard.mkdir(parents=True, exist_ok=True)
            blobs.rename(graveyard / f"sha256-{len(os.listdir(graveyard))}")
        blobs.mkdir(parents=True, exist_ok=True)
        return count

    return wipe


def s3_wipe(s3: Minio, bucket: str) -> Callable[[], int]:
    """Empty the stack's bucket."""

    def wipe() -> int:
        if not s3.bucket_exists(bucket):
            return 0
        names = [o.object_name for o in s3.list_objects(bucket, recursive=True) if o.object_name]
        failed = list(s3.remove_objects(bucket, (DeleteObject(n) for n in names)))
        if failed:
            raise RuntimeError(f"could not empty bucket {bucket}: {failed[0]}")
        return len(names)

    return wipe


@contextmanager
def hash_cache_home(path: Path) -> Iterator[None]:
    """``XDG_CACHE_HOME`` pointed at ``path`` (where ``transfer.cache_for`` keeps hash caches)."""
    before = os.environ.get("XDG_CACHE_HOME")
    os.environ["XDG_CACHE_HOME"] = str(path)
    try:
        yield
    finally:
        if before is None:
            os.environ.pop("XDG_CACHE_HOME", None)
        else:
            os.environ["XDG_CACHE_HOME"] = before


def create_repo(client: Client, name: str, data: Path) -> None:
    """The repo, as ``shipyard dataset create NAME --upload DIR`` makes it before its first push."""
    repo = pb.Repo(
        kind=pb.REPO_KIND_DATASET,
        name=name,
        versioning=pb.VERSIONING_DVS,
        source=pb.Source(upload=pb.UploadSource(filename=data.name)),
    )
    client.call(client.repos.CreateRepo, pb.CreateRepoRequest(repo=repo))


def push_version(
    client: TimedClient, name: str, data: Path, version: int, changed_bytes: int = 0, via: str = "upload"
) -> Pushed:
    """Create version ``version`` of dataset ``name`` from ``data`` (version 1 also creates the repo),
    ``via`` a path import or an upload."""
    if via == "path":
        return import_version(client, name, data, version, changed_bytes)
    first_done: list[int] = []
    planned: list[float] = []

    def progress(done: int, total: int) -> None:
        if not first_done:
            first_done.append(done)  # the bytes the hash cache answered for, before any read

    start = time.monotonic()
    if version == 1:
        create_repo(client, name, data)
    created = time.monotonic()
    manifest = transfer.scan_tree(data, progress)
    scanned = time.monotonic()
    pushed = transfer.push(
        client,
        pb.REPO_KIND_DATASET,
        name,
        data,
        manifest,
        parent_version=version - 1,
        plan=lambda _: planned.append(time.monotonic()),
    )
    end = time.monotonic()
    if pushed.version.number != version:
        raise RuntimeError(f"expected version {version} of {name}, got {pushed.version.number}")
    create_version = client.seconds("CreateVersion")
    upload_end = client.started("CreateVersion") or end
    planned_at = planned[0] if planned else scanned
    steps = {
        "CreateRepo": created - start,
        "scan (walk + sha256, hash cache)": scanned - created,
        "encode manifest + FindMissingBlobs": planned_at - scanned,
        "upload (GetStatus + PUT blobs, manifest)": upload_end - planned_at,
        "CreateVersion": create_version,
    }
    client.rpcs.clear()
    return Pushed(
        version=version,
        seconds=end - start,
        window=(start, end),
        steps=steps,
        files=manifest.file_count,
        total_bytes=manifest.size,
        hashed_bytes=manifest.size - (first_done[0] if first_done else 0),
        uploaded_blobs=pushed.uploaded_blobs,
        uploaded_bytes=pushed.uploaded_bytes,
        manifest_bytes=len(manifest.encode()),
        changed_bytes=changed_bytes,
    )


def import_version(client: TimedClient, name: str, data: Path, version: int, changed_bytes: int) -> Pushed:
    """Version ``version`` of ``name`` read by the platform from ``data`` (CreateVersionFromPath)."""
    start = time.monotonic()
    if version == 1:
        create_repo(client, name, data)
    created = time.monotonic()
    imported = transfer.import_path(client, pb.REPO_KIND_DATASET, name, data, parent_version=version - 1)
    end = time.monotonic()
    if imported is None:
        raise RuntimeError(f"the stack refused to read {data} (is it under SHIPYARD_PATH_IMPORT_ROOTS?)")
    made = imported.version
    if made.number != version:
        raise RuntimeError(f"expected version {version} of {name}, got {made.number}")
    client.rpcs.clear()
    return Pushed(
        version=version,
        seconds=end - start,
        window=(start, end),
        steps={"CreateRepo": created - start, PATH_STEP: end - created},
        files=made.file_count,
        total_bytes=made.size_bytes,
        hashed_bytes=None,
        uploaded_blobs=0,
        uploaded_bytes=0,
        manifest_bytes=0,
        changed_bytes=changed_bytes,
        via="path",
    )


@dataclass
class CliRun:
    """One ``shipyard dataset create NAME --upload DIR`` as a subprocess."""

    seconds: float
    window: tuple[float, float]
    startup_seconds: float  # ``shipyard --help``: interpreter start-up and imports
    output: str  # the CLI's last line
    pid: int


def shipyard_command() -> str:
    """The ``shipyard`` console script of this virtual environment, as a user runs it."""
    beside = Path(sys.executable).parent / "shipyard"
    return str(beside) if beside.exists() else shutil.which("shipyard") or "shipyard"


def cli_create(stack: Stack, name: str, data: Path, cache_home: Path) -> CliRun:
    """Run ``shipyard dataset create NAME --upload DIR`` against ``stack`` with a cold hash cache."""
    env = {
        **os.environ,
        "SHIPYARD_SERVER": stack.grpc_address,
        "SHIPYARD_TOKEN": stack.admin_token(),
        "XDG_CACHE_HOME": str(cache_home),
        "COLUMNS": "120",
    }
    command = shipyard_command()
    help_start = time.monotonic()
    subprocess.run([command, "--help"], env=env, capture_output=True, check=True)
    startup = time.monotonic() - help_start
    start = time.monotonic()
    process = subprocess.Popen(
        [command, "dataset", "create", name, "--upload", str(data)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        text=True,
    )
    output = process.communicate()[0].strip()
    end = time.monotonic()
    if process.returncode != 0:
        raise RuntimeError(f"shipyard dataset create failed ({process.returncode}): {output[-500:]}")
    return CliRun(end - start, (start, end), startup, output.splitlines()[-1] if output else "", process.pid)

"""What a job without a shell for run-svc (through slurmrestd, on Kubernetes) sends of the files its study
reads (a File or TensorFlowEvent collector), and how run-svc reads it back: the job's sender reads with
``job_files``'s reader (no link, no FIFO, nothing above the working directory, bounded); run-svc reads the
staged object bounded and checked, whatever the trial wrote there."""

from __future__ import annotations

import ast
import asyncio
import base64
import json
import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from aiohttp import web
from shipyard_run.adapters.staged_files import (
    COLLECT_SCRIPT,
    COLLECTED_MAX,
    COLLECTED_NAMES_MAX,
    parse_collected,
    read_collected,
)

from shipyard.kit.blob.s3 import StagedPart


@dataclass
class CountingStaging:
    """Staged objects in memory, counting the bytes read."""

    objects: dict[str, bytes] = field(default_factory=dict)
    read: int = 0

    async def read_staged(self, name: str, offset: int, max_bytes: int) -> StagedPart:
        if name not in self.objects:
            raise FileNotFoundError(name)
        data = self.objects[name][offset:offset + max_bytes]
        self.read += len(data)
        return StagedPart(data, len(self.objects[name]))


def bundle(files: dict[str, bytes]) -> bytes:
    return json.dumps({path: base64.b64encode(data).decode() for path, data in files.items()}).encode()


@pytest.mark.parametrize("data", [
    b"", b"not json", b"[]", b'"text"', b"[" * 200_000,  # nested past the recursion limit
    b'{"/m.log": 3}', b'{"/m.log": "not base64!"}', b'{"relative/m.log": "YQ=="}',
    b'{"/m\\u0000.log": "YQ=="}', json.dumps({"/" + "a" * 5000: "YQ=="}).encode(),
])
def test_what_is_not_files_as_the_job_sends_them_is_left_out(data: bytes) -> None:
    assert parse_collected(data, COLLECTED_MAX) == {}


def test_the_files_are_read_up_to_the_bytes_asked_for() -> None:
    files = {"/a.log": b"a" * 10, "/b.log": b"b" * 10, "/c.log": b"c" * 5}
    assert parse_collected(bundle(files), 25) == files
    assert parse_collected(bundle(files), 20) == {"/a.log": b"a" * 10, "/b.log": b"b" * 10}


async def test_an_object_larger_than_the_files_could_make_is_not_read() -> None:
    staging = CountingStaging({"runs/r1/collected.json": b" " * (64 << 20)})
    assert await read_collected(staging, "runs/r1/collected.json", COLLECTED_MAX) == {}
    assert staging.read <= (COLLECTED_MAX + 2) // 3 * 4 + COLLECTED_NAMES_MAX + 1  # never all 64 MiB
    assert await read_collected(staging, "runs/r1/none.json", COLLECTED_MAX) == {}
    staging.objects["runs/r1/collected.json"] = bundle({"/m.log": b"accuracy=0.5\n"})
    assert await read_collected(staging, "runs/r1/collected.json", COLLECTED_MAX) == {
        "/m.log": b"accuracy=0.5\n"}


async def serve_puts(objects: dict[str, bytes]) -> tuple[web.AppRunner, str]:
    async def put(request: web.Request) -> web.Response:
        objects[request.path] = await request.read()
        return web.Response()

    app = web.Application()
    app.router.add_put("/{name:.*}", put)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    return runner, f"http://127.0.0.1:{runner.addresses[0][1]}"


async def test_the_sender_reads_only_the_trials_own_regular_files_below_its_working_directory(
        tmp_path: Path) -> None:
    code, secret = tmp_path / "code", tmp_path / "secret.txt"
    (code / "out/deep").mkdir(parents=True)
    secret.write_text("accuracy=0.99\n")
    (code / "out/metrics.log").write_text("accuracy=0.5\n")
    (code / "out/deep/more.log").write_text("loss=0.1\n")
    (code / "out/link").symlink_to(secret)
    (code / "out/up").symlink_to(tmp_path)
    os.mkfifo(code / "out/fifo")
    objects: dict[str, bytes] = {}
    runner, url = await serve_puts(objects)
    try:
        for path in ("/out", "/../secret.txt", "/out/link"):
            env = {"PATH": os.environ["PATH"], "SHIPYARD_COLLECT_URL": f"{url}/collected{len(objects)}",
                   "SHIPYARD_COLLECT": json.dumps({"base": str(code), "path": path, "max": COLLECTED_MAX})}
            done = await _run(env)
            assert (done.returncode, done.stdout, done.stderr) == (0, "", "")
    finally:
        await runner.cleanup()
    assert parse_collected(objects["/collected0"], COLLECTED_MAX) == {
        "/out/metrics.log": b"accuracy=0.5\n", "/out/deep/more.log": b"loss=0.1\n"}
    assert objects["/collected1"] == objects["/collected2"] == b"{}"


async def _run(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return await asyncio.to_thread(subprocess.run, [sys.executable, "-c", COLLECT_SCRIPT], env=env,
                                   capture_output=True, text=True, timeout=60)


def test_the_sender_is_python_37_and_standard_library_only() -> None:
    """The cluster's node or the run's image runs it with its own python3."""
    tree = ast.parse(COLLECT_SCRIPT, feature_version=(3, 7))
    imported = {alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import)
                for alias in node.names}
    imported |= {node.module.split(".")[0] for node in ast.walk(tree)
                 if isinstance(node, ast.ImportFrom) and node.module}
    assert imported <= set(sys.stdlib_module_names)

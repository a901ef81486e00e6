"""The README's quickstart, run as written: `shipyard up` in a fresh folder prints the banner the
README shows, and every command of the second terminal works there in order, as a new user would
type them (only the ports differ, through the options the README names)."""

from __future__ import annotations

import os
import re
import shlex
import signal
import subprocess
import sys
from pathlib import Path

from shipyard.contracts.repo.v1 import projects_pb2 as pb
from shipyard.local.harness import Stack, free_port, wait_for

ROOT = Path(__file__).resolve().parents[2]
# What the README's sample banner shows, and what this test starts instead (free ports).
SAMPLE_DATA_DIR = "/home/me/shipyard/.shipyard"
SAMPLE_PORTS = {"http": 8080, "grpc": 50051, "nats": 4222}


def quickstart_blocks() -> list[str]:
    """The fenced blocks of the README's Quickstart section, in order."""
    text = (ROOT / "README.md").read_text()
    section = text.split("\n## Quickstart\n", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```[a-z]*\n(.*?)```", section, flags=re.S)


def commands(block: str) -> list[str]:
    """The block's commands, without their comments."""
    return [shlex.join(words) for line in block.splitlines() if (words := shlex.split(line, comments=True))]


def banner(out: Path) -> list[str]:
    """The lines `shipyard up` printed from "Shipyard is up" to "Press Ctrl-C to stop." (both kept)."""
    lines = out.read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("Shipyard is up"))
    end = next(i for i, line in enumerate(lines) if line.startswith("Press Ctrl-C"))
    return [line.rstrip() for line in lines[start:end + 1]]


def test_the_quickstart_works_as_written(tmp_path: Path) -> None:
    up_block, sample, session = quickstart_blocks()[:3]
    assert commands(up_block) == ["make up"]
    assert "shipyard up [--data-dir DIR] [--grpc-port N] [--http-port N] [--nats-port N]" in up_block

    env = {**os.environ, "HOME": str(tmp_path / "home"), "COLUMNS": "200",
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    env.pop("SHIPYARD_TOKEN", None)
    stack = Stack(tmp_path / ".shipyard", env=env)
    stack.data_dir.mkdir(parents=True)
    ports = {"http": stack.http_port, "grpc": stack.grpc_port, "nats": stack.nats_port}
    # As the README's `make up` would, from the folder the user is in: the data goes to ./.shipyard.
    out = open(tmp_path / "up.out", "wb")  # noqa: SIM115 - owned by the child
    stack.process = subprocess.Popen(
        [sys.executable, "-m", "shipyard", "up", "--grpc-port", str(stack.grpc_port),
         "--http-port", str(stack.http_port), "--nats-port", str(stack.nats_port)],
        cwd=tmp_path, env=env, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    out.close()
    try:
        stack.wait_serving(120)
        wait_for(lambda: "Press Ctrl-C" in (tmp_path / "up.out").read_text(), 30, "the banner")
        expected = sample.replace(SAMPLE_DATA_DIR, str(stack.data_dir.resolve()))
        for name, port in SAMPLE_PORTS.items():
            expected = expected.replace(f":{port}", f":{ports[name]}")
        assert banner(tmp_path / "up.out") == expected.rstrip("\n").splitlines()

        for command in commands(session):
            run_as_written(command, tmp_path, env, stack)
    finally:
        assert stack.stop() == 0, "Ctrl-C stops everything in order"


def run_as_written(command: str, cwd: Path, env: dict[str, str], stack: Stack) -> None:
    """Run one of the quickstart's commands in the user's folder; it must succeed."""
    if command == "shipyard events watch":
        watch_until_an_event(cwd, env, stack)
        return
    done = subprocess.run(command, shell=True, cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, \
        f"{command}: exit {done.returncode}\n{done.stdout[-3000:]}{done.stderr[-3000:]}"
    if command == "shipyard project list":
        assert "vision" in done.stdout
    if command == "shipyard demo":
        assert "digits-model" in done.stdout


def watch_until_an_event(cwd: Path, env: dict[str, str], stack: Stack) -> None:
    """`shipyard events watch` shows an event as it happens and ends on Ctrl-C."""
    log = cwd / "watch.out"
    with open(log, "wb") as out:
        watch = subprocess.Popen(["shipyard", "events", "watch"], cwd=cwd, env=env, stdout=out,
                                 stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    try:
        client = stack.client()

        def seen() -> bool:
            # Created until the watch shows one: the watch may not have subscribed at the first.
            name = f"watched-{free_port()}"
            client.call(client.projects.CreateProject, pb.CreateProjectRequest(project=pb.Project(name=name)))
            return "watched-" in log.read_text()

        wait_for(seen, 60, "the watch to show a project created meanwhile", interval=1.0)
    finally:
        watch.send_signal(signal.SIGINT)
        code = watch.wait(30)
    assert code in (0, 130), f"shipyard events watch ended with {code} on Ctrl-C: {log.read_text()[-2000:]}"

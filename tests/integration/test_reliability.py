"""Crashes lose nothing and duplicate nothing: kill -9 NATS, lineage-svc or repo-svc mid-flow."""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from conftest import activity_subjects

from shipyard.client.connection import Client
from shipyard.contracts.common.v1 import common_pb2
from shipyard.contracts.events.v1 import events_pb2
from shipyard.contracts.repo.v1 import projects_pb2 as pb
from shipyard.kit.events import MSG_ID_HEADER, new_event
from shipyard.local.harness import Stack, wait_for
from tests.support.nats import publish_as_owner

CREATED = "io.shipyard.project.created.v1"


@pytest.fixture(scope="module")
def hold_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """While this file exists, repo-svc's outbox relay publishes nothing (a failpoint)."""
    return tmp_path_factory.mktemp("failpoints") / "outbox.hold"


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, hold_file: Path) -> Iterator[Stack]:
    running = Stack(tmp_path_factory.mktemp("stack") / "data",
                    env={"SHIPYARD_FAILPOINTS": f"outbox.hold={hold_file}"}).start()
    try:
        yield running
    finally:
        running.stop()


def create(client: Client, name: str) -> None:
    client.call(client.projects.CreateProject, pb.CreateProjectRequest(project=pb.Project(name=name)))


def assert_each_once(client: Client, names: list[str], timeout: float = 90.0) -> None:
    """Every name's ProjectCreated reaches lineage-svc, and none twice."""
    expected = {f"projects/{n}" for n in names}

    def all_arrived() -> bool:
        counts = activity_subjects(client, CREATED)
        return expected <= set(counts)

    wait_for(all_arrived, timeout, f"{len(names)} ProjectCreated events in lineage-svc", interval=0.25)
    counts = activity_subjects(client, CREATED)
    twice = {s: c for s, c in counts.items() if s in expected and c != 1}
    assert not twice, f"events projected more than once: {twice}"


def test_kill_nats_while_creating(stack: Stack, admin: Client) -> None:
    names = [f"nats-kill-{i:03d}" for i in range(150)]
    old_pid = stack.pid("nats")
    with ThreadPoolExecutor(4) as pool:
        futures = [pool.submit(create, admin, n) for n in names]
        wait_for(lambda: sum(f.done() for f in futures) >= 40, 60, "the first 40 creates")
        os.kill(old_pid, signal.SIGKILL)
        for future in futures:
            future.result()
    stack.wait_restarted("nats", old_pid)
    assert_each_once(admin, names)


def test_kill_lineage_mid_stream(stack: Stack, admin: Client) -> None:
    names = [f"lineage-kill-{i:03d}" for i in range(300)]
    with ThreadPoolExecutor(8) as pool:
        futures = [pool.submit(create, admin, n) for n in names]
        wait_for(lambda: sum(s.startswith("projects/lineage-kill-")
                             for s in activity_subjects(admin, CREATED)) >= 30,
                 60, "lineage-svc to project the first events")
        old_pid = stack.kill("lineage-svc")
        for future in futures:
            future.result()
    stack.wait_restarted("lineage-svc", old_pid)
    assert_each_once(admin, names)


def test_kill_repo_between_commit_and_publish(stack: Stack, admin: Client, hold_file: Path) -> None:
    names = [f"held-{i:02d}" for i in range(20)]
    hold_file.touch()
    try:
        for name in names:
            create(admin, name)  # committed with its outbox entry; the relay holds them
        old_pid = stack.kill("repo-svc")
    finally:
        hold_file.unlink()
    stack.wait_restarted("repo-svc", old_pid)
    assert_each_once(admin, names)
    stack.wait_serving()


def test_same_event_delivered_twice_changes_nothing(stack: Stack, admin: Client) -> None:
    event = new_event(events_pb2.ProjectCreated(project=pb.Project(name="twice", id="p-twice"),
                                                actor=common_pb2.Actor(user="test")),
                      source="shipyard/test", subject="projects/twice", project="twice")

    for copy in ("a", "b"):  # two message ids, so JetStream stores both copies
        asyncio.run(publish_as_owner(stack, event, {**event.headers(), MSG_ID_HEADER: f"{event.id}-{copy}"}))
    marker = f"marker-{event.id}"
    create(admin, marker)  # published after both copies: once it is projected, so are they
    assert_each_once(admin, [marker])
    assert activity_subjects(admin, CREATED)["projects/twice"] == 1


def test_crashed_service_is_restarted_and_health_follows(stack: Stack) -> None:
    stack.kill("serving-svc", signal.SIGSTOP)  # frozen: its health check stops answering
    try:
        wait_for(lambda: not stack.serving(), 30, "the gateway to report NOT_SERVING")
    finally:
        os.kill(stack.pid("serving-svc"), signal.SIGCONT)
    stack.wait_serving(30)
    old_pid = stack.kill("run-svc")
    stack.wait_restarted("run-svc", old_pid)
    stack.wait_serving(60)

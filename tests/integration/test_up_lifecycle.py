"""`shipyard up` stops cleanly on Ctrl-C and a second start finds everything as it was left."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from conftest import activity_subjects

from shipyard.contracts.gateway.v1 import gateway_pb2
from shipyard.contracts.repo.v1 import projects_pb2 as pb
from shipyard.local.harness import Stack, wait_for

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/status") as status:
            return "State:\tZ" not in status.read()  # a zombie is as good as gone
    except FileNotFoundError:
        return False


def test_stop_and_start_again(tmp_path: Path) -> None:
    stack = Stack(tmp_path / "data").start()
    try:
        client = stack.client()
        client.call(client.projects.CreateProject, pb.CreateProjectRequest(
            project=pb.Project(name="kept", description="survives a restart")))
        wait_for(lambda: activity_subjects(client, "io.shipyard.project.created.v1")["projects/kept"] == 1,
                 30, "the activity entry")
        second = subprocess.run([sys.executable, "-m", "shipyard", "up", "--data-dir", str(stack.data_dir),
                                 "--grpc-port", "1", "--http-port", "1", "--nats-port", "1"],
                                capture_output=True, text=True, timeout=60)
        assert second.returncode == 1 and "already running" in second.stderr
        pids = [stack.pid(name) for name in ("nats", "repo-svc", "run-svc", "serving-svc", "lineage-svc",
                                             "gateway")]
        token = stack.admin_token()
    finally:
        code = stack.stop()
    assert code == 0
    assert not [pid for pid in pids if alive(pid)], "processes left running after Ctrl-C"

    again = Stack(tmp_path / "data", grpc_port=stack.grpc_port, http_port=stack.http_port,
                  nats_port=stack.nats_port).start()
    try:
        assert again.admin_token() == token
        client = again.client()
        kept = client.call(client.projects.GetProject, pb.GetProjectRequest(name="kept"))
        assert kept.description == "survives a restart"
        client.call(client.projects.CreateProject, pb.CreateProjectRequest(project=pb.Project(name="after")))
        wait_for(lambda: activity_subjects(client, "io.shipyard.project.created.v1")["projects/after"] == 1,
                 30, "the new project's activity entry")
        assert activity_subjects(client, "io.shipyard.project.created.v1")["projects/kept"] == 1
    finally:
        assert again.stop() == 0


def test_ctrl_c_during_start_up_stops_cleanly(tmp_path: Path) -> None:
    stack = Stack(tmp_path / "data")
    stack.data_dir.mkdir(parents=True)
    stack.process = subprocess.Popen(
        [sys.executable, "-m", "shipyard", "up", "--data-dir", str(stack.data_dir), "--grpc-port",
         str(stack.grpc_port), "--http-port", str(stack.http_port), "--nats-port", str(stack.nats_port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_for(lambda: len((stack.data.read_state() or {}).get("processes", {})) >= 2, 30,
             "the supervisor to start its first processes")
    pids = [p["pid"] for p in (stack.data.read_state() or {})["processes"].values() if p["pid"]]
    assert stack.stop() == 0
    assert not [pid for pid in pids if alive(pid)], "processes left running after Ctrl-C"


def test_trace_context_flows_from_client_to_event_and_consumer(tmp_path: Path) -> None:
    stack = Stack(tmp_path / "data", env={"SHIPYARD_OTEL_EXPORTER": "console"}).start()
    try:
        client = stack.client()
        traceparent = f"00-{TRACE_ID}-00f067aa0ba902b7-01"
        client.projects.CreateProject(pb.CreateProjectRequest(project=pb.Project(name="traced")),
                                      metadata=(*client.metadata, ("traceparent", traceparent)), timeout=30)
        events = client.stream(client.events.Watch, gateway_pb2.WatchRequest(
            from_start=True, subject_prefix="projects/traced"))
        event = next(events)
        assert event.traceparent.split("-")[1] == TRACE_ID
        # Every process exports its spans to its log: the gateway's server span, repo-svc's,
        # and lineage-svc's consumer span all belong to the client's trace.
        for process in ("gateway", "repo-svc", "lineage-svc"):
            log = stack.data.logs / f"{process}.log"
            wait_for(lambda log=log: f"0x{TRACE_ID}" in log.read_text(), 30,
                     f"a span of the trace in {log.name}")
        consumer_span = (stack.data.logs / "lineage-svc.log").read_text()
        assert "lineage io.shipyard.project.created.v1" in consumer_span
    finally:
        stack.stop()


def test_admin_token_file_is_private(tmp_path: Path) -> None:
    stack = Stack(tmp_path / "data").start()
    try:
        assert oct(os.stat(stack.data.admin_token).st_mode & 0o777) == "0o600"
    finally:
        stack.stop()


def _as_an_older_version_left_it(data: Path) -> None:
    """The data directory as versions before the one names laid it out: repo/, run/ (beside the
    supervisor's lock and state), serving/ and lineage/, and the bus users' short names."""
    for name in ("repo", "serving", "lineage"):
        (data / f"{name}-svc").rename(data / name)
    for entry in (data / "run-svc").iterdir():
        entry.rename(data / "run" / entry.name)
    (data / "run-svc").rmdir()
    passwords = json.loads((data / "nats-passwords.json").read_text())
    short = {user.removesuffix("-svc"): password for user, password in passwords.items()}
    (data / "nats-passwords.json").write_text(json.dumps(short))


def test_a_data_directory_from_before_the_one_names_keeps_its_projects(tmp_path: Path) -> None:
    stack = Stack(tmp_path / "data").start()
    try:
        client = stack.client()
        client.call(client.projects.CreateProject, pb.CreateProjectRequest(
            project=pb.Project(name="kept", description="made under the old names")))
        wait_for(lambda: activity_subjects(client, "io.shipyard.project.created.v1")["projects/kept"] == 1,
                 30, "the activity entry")
        token = stack.admin_token()
    finally:
        assert stack.stop() == 0
    data = stack.data.root
    _as_an_older_version_left_it(data)
    assert (data / "repo" / "store.db").exists() and (data / "run" / "store.db").exists()

    again = Stack(tmp_path / "data", grpc_port=stack.grpc_port, http_port=stack.http_port,
                  nats_port=stack.nats_port).start()
    try:
        assert again.admin_token() == token
        client = again.client()
        kept = client.call(client.projects.GetProject, pb.GetProjectRequest(name="kept"))
        assert kept.description == "made under the old names"
        assert activity_subjects(client, "io.shipyard.project.created.v1")["projects/kept"] == 1
    finally:
        assert again.stop() == 0
    assert not [name for name in ("repo", "serving", "lineage") if (data / name).exists()]
    assert (data / "repo-svc" / "store.db").exists() and (data / "run-svc" / "store.db").exists()
    assert not (data / "run" / "store.db").exists(), "run-svc's store left in the supervisor's folder"

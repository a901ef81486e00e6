"""A user's first session: CLI, gRPC, JSON API and events, against the real stack."""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path

import grpc
import pytest
from conftest import activity_subjects, cli
from google.protobuf.field_mask_pb2 import FieldMask
from grpc_health.v1 import health_pb2, health_pb2_grpc

from shipyard.client.connection import Client, ClientError
from shipyard.contracts.gateway.v1 import gateway_pb2
from shipyard.contracts.repo.v1 import projects_pb2 as pb
from shipyard.local.harness import Stack, wait_for


def test_cli_session(stack: Stack, tmp_path: Path) -> None:
    out = cli(stack, tmp_path, "login", "--data-dir", str(stack.data_dir)).stdout
    assert "as admin" in out
    cli(stack, tmp_path, "project", "create", "vision", "--description", "image models", "--leaderboard")
    listed = cli(stack, tmp_path, "project", "list").stdout
    assert "vision" in listed and "image models" in listed
    cli(stack, tmp_path, "project", "edit", "vision", "--thumbnail-url", "https://example.org/v.png")
    shown = cli(stack, tmp_path, "project", "get", "vision").stdout
    assert "https://example.org/v.png" in shown
    duplicate = cli(stack, tmp_path, "project", "create", "vision", check=False)
    assert duplicate.returncode == 1 and "ALREADY_EXISTS" in duplicate.stderr
    status = cli(stack, tmp_path, "status").stdout
    for name in ("nats", "repo-svc", "run-svc", "serving-svc", "lineage-svc"):
        assert name in status
    assert "all healthy" in status
    events = cli(stack, tmp_path, "events", "watch", "--from-start", "--json", "--count", "2",
                 "--type", "io.shipyard.project.*").stdout.splitlines()
    first, second = (json.loads(line) for line in events)
    assert first["type"] == "io.shipyard.project.created.v1"
    assert first["data"]["project"]["name"] == "vision" and first["subject"] == "projects/vision"
    assert second["type"] == "io.shipyard.project.updated.v1"
    assert second["data"]["changedFields"] == ["thumbnail_url"]
    assert second["sequence"] > first["sequence"]


def test_login_with_server_and_token(stack: Stack, tmp_path: Path) -> None:
    out = cli(stack, tmp_path, "login", "--server", stack.grpc_address, "--token", stack.admin_token()).stdout
    assert "as admin" in out
    wrong = cli(stack, tmp_path, "login", "--server", stack.grpc_address, "--token", "sy_x.y", check=False)
    assert wrong.returncode == 1 and "UNAUTHENTICATED" in wrong.stderr


def test_watch_resumes_after_a_sequence(stack: Stack, admin: Client) -> None:
    for name in ("resume-a", "resume-b", "resume-c"):
        admin.call(admin.projects.CreateProject, pb.CreateProjectRequest(project=pb.Project(name=name)))
    events = admin.stream(admin.events.Watch, gateway_pb2.WatchRequest(
        from_start=True, types=["io.shipyard.project.created.v1"], subject_prefix="projects/resume-"))
    first = next(events)
    resumed = admin.stream(admin.events.Watch, gateway_pb2.WatchRequest(
        start_sequence=first.sequence, subject_prefix="projects/resume-"))
    assert [next(resumed).subject for _ in range(2)] == ["projects/resume-b", "projects/resume-c"]


def test_json_api_and_console(stack: Stack, admin: Client) -> None:
    request = urllib.request.Request(
        f"{stack.http_url}/api/shipyard.repo.v1.ProjectService/CreateProject",
        data=json.dumps({"project": {"name": "from-json", "leaderboard": True}}).encode(),
        headers={"Authorization": f"Bearer {stack.admin_token()}", "Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as reply:
        body = json.loads(reply.read())
    assert body["name"] == "from-json" and body["leaderboard"] is True and body["owner"] == "admin"
    with urllib.request.urlopen(f"{stack.http_url}/", timeout=10) as page:
        assert b"Shipyard" in page.read()
    with urllib.request.urlopen(f"{stack.http_url}/api/status", timeout=10) as reply:
        assert json.loads(reply.read()) == {"healthy": True}  # before sign-in: nothing more
    signed_in = urllib.request.Request(f"{stack.http_url}/api/status",
                                       headers={"Authorization": f"Bearer {stack.admin_token()}"})
    with urllib.request.urlopen(signed_in, timeout=10) as reply:
        status = json.loads(reply.read())
    assert status["healthy"] is True
    assert {s["name"] for s in status["services"]} == {"nats", "gateway", "repo-svc", "run-svc",
                                                       "serving-svc", "lineage-svc"}


def test_events_as_server_sent_events(stack: Stack, admin: Client) -> None:
    admin.call(admin.projects.CreateProject, pb.CreateProjectRequest(project=pb.Project(name="sse")))
    request = urllib.request.Request(
        f"{stack.http_url}/api/events?from_start=1&subject_prefix=projects/sse&type=io.shipyard.project.*",
        headers={"Authorization": f"Bearer {stack.admin_token()}"})
    with urllib.request.urlopen(request, timeout=30) as stream:
        assert stream.headers["Content-Type"].startswith("text/event-stream")
        lines = []
        while not lines or not lines[-1].startswith("data:"):
            lines.append(stream.readline().decode().strip())
    event = json.loads(lines[-1].removeprefix("data:"))
    assert event["type"] == "io.shipyard.project.created.v1" and event["subject"] == "projects/sse"
    assert lines[-2] == f"id: {event['sequence']}"


def test_trace_context_reaches_the_event_without_an_exporter(admin: Client) -> None:
    trace_id = "0af7651916cd43dd8448eb211c80319c"
    traceparent = ("traceparent", f"00-{trace_id}-b7ad6b7169203331-01")
    admin.projects.CreateProject(pb.CreateProjectRequest(project=pb.Project(name="traced-cheaply")),
                                 metadata=(*admin.metadata, traceparent), timeout=30)
    event = next(admin.stream(admin.events.Watch, gateway_pb2.WatchRequest(
        from_start=True, subject_prefix="projects/traced-cheaply")))
    assert event.traceparent.split("-")[1] == trace_id


def test_healthz(stack: Stack) -> None:
    with urllib.request.urlopen(f"{stack.http_url}/healthz", timeout=10) as reply:
        assert json.loads(reply.read()) == {"healthy": True}


def test_update_and_delete_reach_lineage(stack: Stack, admin: Client) -> None:
    admin.call(admin.projects.CreateProject, pb.CreateProjectRequest(project=pb.Project(name="short-lived")))
    admin.call(admin.projects.UpdateProject, pb.UpdateProjectRequest(
        name="short-lived", project=pb.Project(description="soon gone"),
        update_mask=FieldMask(paths=["description"])))
    admin.call(admin.projects.DeleteProject, pb.DeleteProjectRequest(name="short-lived"))
    with pytest.raises(ClientError) as missing:
        admin.call(admin.projects.GetProject, pb.GetProjectRequest(name="short-lived"))
    assert missing.value.code == "NOT_FOUND"
    wait_for(lambda: activity_subjects(admin, "io.shipyard.project.deleted.v1")["projects/short-lived"] == 1,
             30, "ProjectDeleted in the activity feed")
    assert activity_subjects(admin, "io.shipyard.project.updated.v1")["projects/short-lived"] == 1


def test_request_id_makes_create_idempotent(admin: Client) -> None:
    request = pb.CreateProjectRequest(project=pb.Project(name="once"), request_id="req-123")
    first = admin.call(admin.projects.CreateProject, request)
    again = admin.call(admin.projects.CreateProject, request)
    assert first.id == again.id


def test_gateway_health_is_standard_grpc(stack: Stack) -> None:
    assert stack.serving()
    with grpc.insecure_channel(stack.grpc_address) as channel:
        reply = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=5)
    assert reply.status == health_pb2.HealthCheckResponse.SERVING


def test_cli_creates_several_projects_at_once_all_or_none(stack: Stack, tmp_path: Path,
                                                           admin: Client) -> None:
    cli(stack, tmp_path, "login", "--data-dir", str(stack.data_dir))
    out = cli(stack, tmp_path, "project", "create", "many-a", "many-b", "many-c",
              "--description", "batch").stdout
    assert all(f"Created project many-{x}" in out for x in "abc")
    wait_for(lambda: all(activity_subjects(admin, "io.shipyard.project.created.v1")[f"projects/many-{x}"] == 1
                         for x in "abc"), 30, "three ProjectCreated in the activity feed")

    failed = cli(stack, tmp_path, "project", "create", "many-d", "many-a", check=False)
    assert failed.returncode == 1
    assert "ALREADY_EXISTS" in failed.stderr and "requests[1]" in failed.stderr
    with pytest.raises(ClientError) as missing:
        admin.call(admin.projects.GetProject, pb.GetProjectRequest(name="many-d"))
    assert missing.value.code == "NOT_FOUND"

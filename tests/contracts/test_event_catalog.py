"""The event catalog (shipyard.kit.events) against events.proto, and the CloudEvents envelope."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from shipyard.contracts.common.v1 import common_pb2
from shipyard.contracts.events.v1 import events_pb2
from shipyard.contracts.repo.v1 import projects_pb2
from shipyard.kit.events import (
    CATALOG,
    CONTENT_TYPE,
    MSG_ID_HEADER,
    SPEC_VERSION,
    Event,
    EventDecodeError,
    EventKind,
    decode,
    new_event,
)

ROOT = Path(__file__).resolve().parents[2]
EVENTS_PROTO = ROOT / "proto" / "shipyard" / "events" / "v1" / "events.proto"
# "// io.shipyard.<area>.<event>.v1 …" on the line right above "message Name {"
DOCUMENTED = re.compile(r"^// (io\.shipyard\.[a-z0-9_.]+\.v1)\b.*\n^message (\w+) \{", re.MULTILINE)
TOP_LEVEL_MESSAGE = re.compile(r"^message (\w+) \{", re.MULTILINE)
CE_TYPE = re.compile(r"^io\.shipyard\.(?P<area>[a-z0-9]+)\.(?P<event>[a-z0-9_]+)\.v1$")


def proto_messages() -> list[str]:
    return TOP_LEVEL_MESSAGE.findall(EVENTS_PROTO.read_text())


def documented_types() -> dict[str, str]:
    """Message name → the CloudEvent type the proto file's comment gives it."""
    return {name: ce_type for ce_type, name in DOCUMENTED.findall(EVENTS_PROTO.read_text())}


def kind_of(message_name: str) -> EventKind:
    kinds = [k for k in CATALOG.values() if k.message.DESCRIPTOR.name == message_name]
    assert len(kinds) == 1, f"{message_name}: {len(kinds)} catalog entries"
    return kinds[0]


def test_every_events_proto_message_is_in_the_catalog() -> None:
    names = proto_messages()
    assert len(names) >= 5
    assert sorted(k.message.DESCRIPTOR.name for k in CATALOG.values()) == sorted(names)


@pytest.mark.parametrize("message_name", proto_messages())
def test_catalog_type_and_subject_follow_the_convention(message_name: str) -> None:
    kind = kind_of(message_name)
    match = CE_TYPE.match(kind.ce_type)
    assert match, f"{message_name}: type {kind.ce_type!r} is not io.shipyard.<area>.<event>.v1"
    assert kind.subject == f"shipyard.events.{match['area']}.{match['event']}"
    assert CATALOG[kind.ce_type] is kind


@pytest.mark.parametrize("message_name", proto_messages())
def test_catalog_type_is_the_one_events_proto_documents(message_name: str) -> None:
    documented = documented_types()
    assert message_name in documented, f"events.proto: {message_name} has no '// io.shipyard.….v1' comment"
    assert kind_of(message_name).ce_type == documented[message_name]


def test_known_examples() -> None:
    kind = kind_of("ProjectCreated")
    assert kind.ce_type == "io.shipyard.project.created.v1"
    assert kind.subject == "shipyard.events.project.created"
    assert kind_of("RunSubmitted").subject == "shipyard.events.run.submitted"


def test_study_events_are_run_svcs_own_areas() -> None:
    from shipyard.kit.bus_access import AREA_OWNERS

    assert kind_of("StudyStarted").ce_type == "io.shipyard.study.started.v1"
    assert kind_of("TrialCompleted").subject == "shipyard.events.trial.completed"
    assert kind_of("StudyCompleted").subject == "shipyard.events.study.completed"
    assert AREA_OWNERS["study"] == AREA_OWNERS["trial"] == "run-svc"


# --- the envelope ------------------------------------------------------------------------


def sample() -> Event:
    data = events_pb2.ProjectCreated(project=projects_pb2.Project(id="p1", name="mnist", owner="alice"),
                                     actor=common_pb2.Actor(user="alice", roles=["data-scientist"]))
    return new_event(data, source="shipyard/repo-svc", subject="projects/mnist", project="mnist",
                     traceparent="00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")


def test_new_event_fills_the_envelope() -> None:
    event = sample()
    assert event.type == "io.shipyard.project.created.v1"
    assert event.nats_subject == "shipyard.events.project.created"
    assert len(event.id) == 26
    assert event.time.tzinfo is not None
    assert new_event(event.data, source="s", subject="x").id != event.id


def test_new_event_refuses_a_message_outside_the_catalog() -> None:
    with pytest.raises(ValueError, match="not in the events catalog"):
        new_event(projects_pb2.Project(name="x"), source="s", subject="x")


def test_headers_are_cloudevents_binary_mode() -> None:
    event = sample()
    headers = event.headers()
    assert headers["ce-specversion"] == SPEC_VERSION
    assert headers["ce-id"] == headers[MSG_ID_HEADER] == event.id
    assert headers["ce-type"] == event.type
    assert headers["ce-source"] == "shipyard/repo-svc"
    assert headers["ce-subject"] == "projects/mnist"
    assert headers["ce-project"] == "mnist"
    # CloudEvents: dataschema is an absolute URI (a scheme), naming the protobuf message.
    assert headers["ce-dataschema"] == "urn:shipyard:protobuf:shipyard.events.v1.ProjectCreated"
    assert urlsplit(headers["ce-dataschema"]).scheme == "urn"
    assert headers["content-type"] == CONTENT_TYPE
    assert headers["traceparent"] == event.traceparent
    assert headers["ce-time"].endswith("Z")


def test_optional_headers_are_left_out_when_empty() -> None:
    headers = new_event(events_pb2.ProjectDeleted(name="x"), source="s", subject="projects/x").headers()
    assert "ce-project" not in headers


def test_an_event_no_call_caused_starts_a_trace_of_its_own() -> None:
    first, second = (new_event(events_pb2.ProjectDeleted(name="x"), source="s", subject="projects/x")
                     for _ in range(2))
    assert re.fullmatch(r"00-[0-9a-f]{32}-[0-9a-f]{16}-01", first.headers()["traceparent"])
    assert first.traceparent.split("-")[1] != second.traceparent.split("-")[1]


def test_event_round_trips_through_headers_and_payload() -> None:
    event = sample()
    back = decode(event.headers(), event.payload(), sequence=42)
    assert back == replace(event, sequence=42)
    assert isinstance(back.data, events_pb2.ProjectCreated)
    assert back.data.project.name == "mnist"


def test_time_round_trips_exactly() -> None:
    event = replace(sample(), time=datetime(2026, 3, 4, 5, 6, 7, 890123, tzinfo=UTC))
    assert event.headers()["ce-time"] == "2026-03-04T05:06:07.890123Z"
    assert decode(event.headers(), event.payload()).time == event.time


@pytest.mark.parametrize("missing", ["ce-type", "ce-id", "ce-time"])
def test_decode_without_a_required_header_is_a_decode_error(missing: str) -> None:
    event = sample()
    headers = {k: v for k, v in event.headers().items() if k != missing}
    with pytest.raises(EventDecodeError):
        decode(headers, event.payload())


def test_decode_of_an_unknown_type_is_a_decode_error() -> None:
    event = sample()
    with pytest.raises(EventDecodeError):
        decode({**event.headers(), "ce-type": "io.shipyard.nothing.happened.v1"}, event.payload())


def test_decode_of_a_bad_time_is_a_decode_error() -> None:
    event = sample()
    with pytest.raises(EventDecodeError):
        decode({**event.headers(), "ce-time": "yesterday"}, event.payload())


@pytest.mark.parametrize("payload", [b"\xff\xff\xff\xff", b"\x0a\x05ab", b"\x0a\xff"])
def test_decode_of_a_garbage_payload_is_a_decode_error(payload: bytes) -> None:
    with pytest.raises(EventDecodeError):
        decode(sample().headers(), payload)


def test_decode_of_no_headers_at_all_is_a_decode_error() -> None:
    with pytest.raises(EventDecodeError):
        decode({}, b"")

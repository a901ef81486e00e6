"""Events as structured-mode CloudEvents JSON: what webhooks send, read back with the CNCF SDK."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
from cloudevents.core.bindings.http import from_http_event

from shipyard.contracts.common.v1 import common_pb2
from shipyard.contracts.events.v1 import events_pb2
from shipyard.kit.event_json import STRUCTURED_CONTENT_TYPE, structured, structured_document
from shipyard.kit.events import EventDecodeError, new_event

TRACEPARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


def test_a_stored_event_becomes_a_structured_cloudevent() -> None:
    data = events_pb2.RunFailed(run_id="r1", name="train", exit_code=3, actor=common_pb2.Actor(user="al"))
    event = new_event(data, source="shipyard/run", subject="runs/r1", project="vision",
                      traceparent=TRACEPARENT)

    message = structured(event.headers(), event.payload(), 42)

    assert message.headers == {"content-type": STRUCTURED_CONTENT_TYPE}
    parsed = from_http_event(message)
    assert (parsed.get_id(), parsed.get_type(), parsed.get_source(), parsed.get_subject()) == (
        event.id, "io.shipyard.run.failed.v1", "shipyard/run", "runs/r1")
    assert parsed.get_time() == event.time and parsed.get_specversion() == "1.0"
    assert (parsed.get_datacontenttype(), parsed.get_dataschema()) == (
        "application/json", "urn:shipyard:protobuf:shipyard.events.v1.RunFailed")
    assert [parsed.get_extension(n) for n in ("sequence", "project", "traceparent")] == [42, "vision",
                                                                                         TRACEPARENT]
    assert parsed.get_data() == {"runId": "r1", "name": "train", "exitCode": 3, "actor": {"user": "al"}}
    assert json.loads(message.body) == structured_document(replace(event, sequence=42))


def test_attributes_an_event_lacks_are_left_out() -> None:
    event = new_event(events_pb2.ProjectDeleted(name="p"), source="shipyard/repo", subject="")
    document = json.loads(structured(event.headers(), event.payload(), 0).body)
    assert not {"subject", "sequence", "project"} & set(document)
    assert document["traceparent"] == event.traceparent  # a trace of its own: every event has one


def test_an_event_of_an_unknown_type_is_refused() -> None:
    with pytest.raises(EventDecodeError):
        structured({"ce-type": "io.shipyard.nope.v1", "ce-id": "x", "ce-time": "2026-01-01T00:00:00Z"},
                   b"", 1)

"""Events as structured-mode CloudEvents JSON (``application/cloudevents+json``).

On the bus an event travels in binary mode (``ce-*`` headers, protobuf body; see events.py).
Outside automation gets the structured form instead: one JSON document holding the attributes
and ``data``, the protobuf message in its canonical JSON mapping. The CNCF SDK builds and writes
it, so what we send is what every CloudEvents SDK reads back.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from cloudevents.core.bindings.http import HTTPMessage, to_structured
from cloudevents.core.formats.json import JSONFormat
from cloudevents.core.v1.event import CloudEvent
from google.protobuf import json_format

from shipyard.kit.events import SPEC_VERSION, Event, data_schema, decode

STRUCTURED_CONTENT_TYPE = JSONFormat.CONTENT_TYPE
DATA_CONTENT_TYPE = "application/json"
_FORMAT = JSONFormat()


def cloud_event(event: Event) -> CloudEvent:
    """The SDK's CloudEvent of one of ours: data as JSON, extensions ``sequence`` (the JetStream
    stream sequence, to resume after), ``project`` and ``traceparent`` when they are set."""
    attributes: dict[str, Any] = {
        "specversion": SPEC_VERSION, "id": event.id, "source": event.source, "type": event.type,
        "time": event.time, "datacontenttype": DATA_CONTENT_TYPE,
        "dataschema": data_schema(event.data),
    }
    # The SDK refuses empty optional attributes: leave out what the event does not have.
    optional = {"subject": event.subject, "sequence": event.sequence, "project": event.project,
                "traceparent": event.traceparent}
    attributes.update({name: value for name, value in optional.items() if value})
    return CloudEvent(attributes, json_format.MessageToDict(event.data))


def structured(headers: Mapping[str, str], payload: bytes, sequence: int) -> HTTPMessage:
    """A stored event (bus headers, protobuf body, stream sequence) as an HTTP structured-mode
    message: the content type header and the JSON body. EventDecodeError if it is not ours."""
    return to_structured(cloud_event(decode(headers, payload, sequence)), _FORMAT)


def structured_document(event: Event) -> dict[str, Any]:
    """The structured-mode JSON document of an event, as a dict (what ``structured`` sends)."""
    document: dict[str, Any] = json.loads(_FORMAT.write(cloud_event(event)))
    return document

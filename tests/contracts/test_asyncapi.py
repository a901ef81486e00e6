"""The AsyncAPI document describes every event of the catalog on its subject."""

from __future__ import annotations

import json
import subprocess
import sys

from shipyard.kit.asyncapi import catalog_document
from shipyard.kit.events import CATALOG


def test_every_event_is_a_channel_on_its_subject() -> None:
    document = catalog_document()
    assert document["asyncapi"].startswith("3.")
    assert document["defaultContentType"] == "application/protobuf"
    for kind in CATALOG.values():
        channel = document["channels"][kind.ce_type]
        assert channel["address"] == kind.subject


def test_payload_schemas_list_the_proto_fields() -> None:
    schemas = json.dumps(catalog_document()["components"]["schemas"])
    for field in ("changedFields", "previousName", "thumbnailUrl", "hyperparameters", "producedByRun"):
        assert field in schemas


def test_cli_prints_the_document() -> None:
    out = subprocess.run([sys.executable, "-m", "shipyard", "events", "catalog"], capture_output=True,
                         text=True, timeout=60, check=True).stdout
    assert "io.shipyard.project.created.v1" in json.loads(out)["channels"]

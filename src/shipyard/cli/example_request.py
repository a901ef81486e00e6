"""A request to try a served model, built from the model's own V2 metadata (its input names,
datatypes and shapes), so that what the CLI suggests is what the model server accepts."""

from __future__ import annotations

import json
import math
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from typing import Any

from shipyard.client.connection import Client

METADATA_TIMEOUT_S = 10.0
TOKEN_HINT = "$SHIPYARD_TOKEN"


def gateway_base(c: Client) -> str:
    """The gateway's HTTP address as clients reach it (what it says its blob URL is, minus the path)."""
    return c.status().blob_url.removesuffix("/api/blobs") or "http://127.0.0.1:8080"


def model_metadata(c: Client, endpoint: str) -> dict[str, Any] | None:
    """The V2 metadata of the model at ``endpoint`` (GET through the gateway); None when it cannot be
    read (the example then says where to look instead)."""
    request = urllib.request.Request(f"{gateway_base(c)}{endpoint}",
                                     headers={"Authorization": f"Bearer {c.credentials.token}"})
    try:
        with urllib.request.urlopen(request, timeout=METADATA_TIMEOUT_S) as reply:
            found = json.loads(reply.read())
    except (OSError, ValueError, urllib.error.URLError):
        return None
    return found if isinstance(found, dict) and isinstance(found.get("inputs"), list) else None


def _zero(datatype: str) -> Any:
    if datatype == "BOOL":
        return False
    if datatype == "BYTES":
        return ""
    return 0.0 if datatype.startswith("FP") else 0


def example_body(metadata: Mapping[str, Any], sample: Sequence[Any] = ()) -> dict[str, Any]:
    """A V2 infer request with one row of every input the metadata names (``-1`` dimensions become 1):
    ``sample`` fills the first input when its size matches, zeros of the input's datatype otherwise."""
    inputs = []
    for index, spec in enumerate(metadata.get("inputs", [])):
        shape = [1 if int(dim) < 0 else int(dim) for dim in spec.get("shape", [])] or [1]
        size = math.prod(shape)
        datatype = str(spec.get("datatype", "FP32"))
        data = list(sample) if index == 0 and len(sample) == size else [_zero(datatype)] * size
        inputs.append({"name": spec["name"], "shape": shape, "datatype": datatype, "data": data})
    return {"inputs": inputs}


def curl_lines(base: str, endpoint: str, metadata: Mapping[str, Any] | None, sample: Sequence[Any] = ()
               ) -> list[str]:
    """What to paste to try the model: its infer call with an example body from ``metadata``, or,
    without metadata, the call that shows the model's inputs."""
    auth = f'curl -s -H "Authorization: Bearer {TOKEN_HINT}"'
    if metadata is None:
        return [f"{auth} {base}{endpoint}   # the model's inputs: names, datatypes, shapes",
                f"{auth} {base}{endpoint}/infer -d '{{\"inputs\": [...]}}'"]
    return [f"{auth} {base}{endpoint}/infer -d '{json.dumps(example_body(metadata, sample))}'"]

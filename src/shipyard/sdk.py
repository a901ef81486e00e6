"""What a run's code imports: ``from shipyard.sdk import log_metrics`` (and ``call``, the API as the run's
owner). Only the standard library: every run environment carries this one module.

Inside a run, metrics go to the file at SHIPYARD_METRICS_FILE (one JSON object per line), which
the executor reads as the run goes; outside a run they are printed as ``name=value`` lines,
the form the executor also reads from stdout (Katib's), so the same script works either way.
"""

from __future__ import annotations

import json
import math
import os
import sys
import time
import urllib.error
import urllib.request
from typing import Any


def log_metrics(step: int | None = None, **metrics: float) -> None:
    """Log metric values, e.g. ``log_metrics(step=epoch, loss=0.31, accuracy=0.92)``.

    ``step`` is the x of each point (default: one more than the metric's last step). Values must be
    finite numbers; a ValueError names the first that is not.
    """
    for name, value in metrics.items():
        if not isinstance(value, int | float) or isinstance(value, bool) or not math.isfinite(value):
            raise ValueError(f"metric {name!r} must be a finite number, not {value!r}")
    path = os.environ.get("SHIPYARD_METRICS_FILE")
    if not path:
        print(" ".join(f"{name}={value}" for name, value in metrics.items()), file=sys.stdout, flush=True)
        return
    now = time.time()
    with open(path, "a", encoding="utf-8") as out:
        for name, value in metrics.items():
            record = {"name": name, "value": float(value), "time": now}
            if step is not None:
                record["step"] = step
            out.write(json.dumps(record) + "\n")


class ApiError(Exception):
    """The API refused a call: ``code`` is its status (``PERMISSION_DENIED``, ``NOT_FOUND``, …)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


def call(method: str, request: dict[str, Any] | None = None, timeout: float = 30.0) -> dict[str, Any]:
    """Call the platform's API as the run's owner, e.g. ``call("shipyard.repo.v1.RepoService/ListRepos")``:
    the gateway's HTTP/JSON API at SHIPYARD_API_URL with the run's own token (SHIPYARD_TOKEN), the
    request and the reply as proto3 JSON. ApiError says why a call was refused."""
    base, token = os.environ.get("SHIPYARD_API_URL"), os.environ.get("SHIPYARD_TOKEN")
    if not base or not token:
        raise ApiError("UNAVAILABLE", "SHIPYARD_API_URL and SHIPYARD_TOKEN are set only inside a run")
    body = json.dumps(request or {}).encode()
    sent = urllib.request.Request(f"{base.rstrip('/')}/api/{method.lstrip('/')}", data=body, method="POST",
                                  headers={"Authorization": f"Bearer {token}",
                                           "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(sent, timeout=timeout) as reply:
            answer: dict[str, Any] = json.loads(reply.read() or b"{}")
            return answer
    except urllib.error.HTTPError as exc:
        try:
            said = json.loads(exc.read())
        except ValueError:
            said = {}
        raise ApiError(str(said.get("code", exc.code)), str(said.get("message", exc.reason))) from None

"""A model server's load, as its ``/metrics`` endpoint reports it (Prometheus text format 0.0.4):
written by the model server (``shipyard_model_server``), read by serving-svc's replica scaling and by
any Prometheus. Both sides run as separate processes and share only this format, so it lives here."""

from __future__ import annotations

from dataclasses import dataclass

IN_FLIGHT = "shipyard_model_requests_in_flight"
ACCEPTED = "shipyard_model_requests_total"
REJECTED = "shipyard_model_requests_rejected_total"
_ABOUT = {
    IN_FLIGHT: ("gauge", "Inference requests being answered now."),
    ACCEPTED: ("counter", "Inference requests accepted."),
    REJECTED: ("counter", "Inference requests refused (429) at the concurrency limit."),
}


@dataclass(frozen=True)
class ReplicaLoad:
    """Requests in flight now; accepted and refused since the server started."""

    in_flight: int
    accepted: int
    rejected: int


def format_load(load: ReplicaLoad) -> str:
    """``load`` in the Prometheus text format."""
    values = {IN_FLIGHT: load.in_flight, ACCEPTED: load.accepted, REJECTED: load.rejected}
    lines: list[str] = []
    for name, (kind, about) in _ABOUT.items():
        lines += [f"# HELP {name} {about}", f"# TYPE {name} {kind}", f"{name} {values[name]}"]
    return "\n".join(lines) + "\n"


def parse_load(text: str) -> ReplicaLoad:
    """The load in a ``/metrics`` page; ValueError naming a metric that is missing or not a number."""
    values: dict[str, float] = {}
    for line in text.splitlines():
        name, _, value = line.partition(" ")
        if name in _ABOUT:
            values[name] = float(value.split()[0]) if value.strip() else float("nan")
    for name in _ABOUT:
        if not values.get(name, -1.0) >= 0:
            raise ValueError(f"the model server's metrics lack a count for {name}")
    return ReplicaLoad(int(values[IN_FLIGHT]), int(values[ACCEPTED]), int(values[REJECTED]))

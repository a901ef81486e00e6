"""What ``run compare`` and ``<kind> compare`` share: CSV downloads and lineage differences."""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path

from shipyard.client.connection import Client, ClientError
from shipyard.contracts.lineage.v1 import lineage_pb2 as lpb

LINEAGE_DEPTH = 2  # the version <- its run <- what the run used


def write_csv(path: Path, header: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    """Write a comparison table as CSV (what the console's "download as CSV" gives too)."""
    with path.open("w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        writer.writerow(header)
        writer.writerows(rows)


def upstream_summary(c: Client, kind: str, name: str) -> dict[str, str]:
    """Where a version came from, row by row: its run, the code, the image, the inputs and the run's
    hyperparameters ({} when lineage knows nothing of it, e.g. an upload)."""
    try:
        graph = c.call(c.lineage.GetLineage, lpb.GetLineageRequest(kind=kind, name=name,
                                                                    direction=lpb.DIRECTION_UPSTREAM,
                                                                    depth=LINEAGE_DEPTH))
    except ClientError:
        return {}
    nodes = {n.id: n for n in graph.nodes}
    runs = [nodes[e.source] for e in graph.edges if e.target == graph.root and e.relation == "produced"]
    if not runs:
        return {"lineage run": "— (not made by a run)"}
    run = runs[0]
    used = [nodes[e.source] for e in graph.edges if e.target == run.id and e.relation == "used"]
    summary = {
        "lineage run": run.label,
        "lineage code": ", ".join(sorted(n.label for n in used if n.kind == "code")) or "—",
        "lineage image": ", ".join(sorted(n.label for n in used if n.kind == "image")) or "—",
        "lineage inputs": ", ".join(sorted(n.label for n in used if n.kind not in ("code", "image"))) or "—",
    }
    for key, value in sorted(run.attributes.items()):
        if key.startswith("hp."):
            summary[f"lineage hp {key[3:]}"] = value
    return summary

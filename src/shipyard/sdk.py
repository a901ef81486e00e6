"""What a run's code imports: ``from shipyard.sdk import log_metrics``.

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

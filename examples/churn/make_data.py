"""Writes churn.csv: 400 made-up customers (tenure, monthly charge, support calls, churned)."""

from __future__ import annotations

import csv
import random
import sys
from pathlib import Path


def main(out: Path) -> None:
    rng = random.Random(7)
    out.mkdir(parents=True, exist_ok=True)
    with (out / "churn.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["tenure", "monthly", "support_calls", "churned"])
        for _ in range(400):
            tenure, monthly, calls = rng.randint(1, 72), round(rng.uniform(20, 120), 2), rng.randint(0, 9)
            risk = 0.9 * calls / 9 + 0.6 * monthly / 120 - 1.1 * tenure / 72
            writer.writerow([tenure, monthly, calls, int(risk + rng.gauss(0, 0.15) > 0.2)])


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "data"))

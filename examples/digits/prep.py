"""Preprocessing run: scikit-learn's bundled digits (no download) as a CSV dataset version.

Writes ``digits.csv`` (64 pixel columns, then the label) into SHIPYARD_OUTPUT; the run's output
dataset gets it as its next version. ``limit`` (a hyperparameter) keeps only the first rows.
"""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path

from sklearn.datasets import load_digits


def main() -> None:
    digits = load_digits()
    path = os.environ.get("SHIPYARD_HYPERPARAMS")  # the run's hyperparameters, as JSON
    hp = json.loads(Path(path).read_text()) if path else {}
    limit = int(hp.get("limit", len(digits.target)))
    out = Path(os.environ.get("SHIPYARD_OUTPUT", "out"))
    out.mkdir(parents=True, exist_ok=True)
    with (out / "digits.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow([f"p{i}" for i in range(64)] + ["label"])
        for pixels, label in list(zip(digits.data, digits.target, strict=True))[:limit]:
            writer.writerow([int(p) for p in pixels] + [int(label)])
    print(f"rows={min(limit, len(digits.target))}")


if __name__ == "__main__":
    main()

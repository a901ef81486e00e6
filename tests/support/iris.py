"""A tiny served model for the model server's tests and serving-svc's replica tests: iris fitted with
scikit-learn, custom predictor modules written to disk, and a V2 request for it."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

IRIS_ROWS = [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]]  # a setosa (0) and a virginica (2)
IRIS_CLASSES = [0, 2]


def train_iris(directory: Path, filename: str = "model.joblib") -> Path:
    """A LogisticRegression fitted on iris, saved with joblib as ``directory/filename``."""
    import joblib
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    features, labels = load_iris(return_X_y=True)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / filename
    joblib.dump(LogisticRegression(max_iter=1000).fit(features, labels), path)
    return path


def write_module(directory: Path, name: str, source: str) -> Path:
    """``source`` (dedented) as ``directory/name.py``."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{name}.py"
    path.write_text(textwrap.dedent(source))
    return path


def iris_request(rows: list[list[float]] | None = None, **extra: Any) -> dict[str, Any]:
    """A V2 infer request of ``rows`` (default: ``IRIS_ROWS``), with ``extra`` top-level fields."""
    data = rows if rows is not None else IRIS_ROWS
    return {
        "inputs": [{"name": "input-0", "shape": [len(data), 4], "datatype": "FP64", "data": data}],
        **extra,
    }

"""Training run: a linear classifier on the digits dataset, one epoch at a time.

Reads ``digits.csv`` from the input mounted at /mnt/data (or wherever SHIPYARD_MOUNT_MNT_DATA
says; without one, scikit-learn's bundled copy), trains with the hyperparameters ``epochs``,
``lr`` and ``alpha``, logs ``loss`` and ``accuracy`` each epoch (``shipyard.sdk.log_metrics``),
and writes ``model.joblib`` and ``metrics.json`` into SHIPYARD_OUTPUT, which becomes the output
model's next version. Works outside Shipyard too: ``python train.py``.
"""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path

import joblib
import numpy as np
from sklearn.datasets import load_digits
from sklearn.linear_model import SGDClassifier
from sklearn.metrics import accuracy_score, log_loss
from sklearn.model_selection import train_test_split

from shipyard.sdk import log_metrics


def load() -> tuple[np.ndarray, np.ndarray]:
    """The pixels and labels: from the mounted dataset when there is one, else the bundled copy."""
    mounted = Path(os.environ.get("SHIPYARD_MOUNT_MNT_DATA", "/mnt/data")) / "digits.csv"
    if not mounted.exists():
        digits = load_digits()
        return digits.data, digits.target
    with mounted.open() as handle:
        rows = list(csv.reader(handle))[1:]
    table = np.array(rows, dtype=float)
    return table[:, :-1], table[:, -1].astype(int)


def hyperparameters() -> dict[str, str]:
    """The run's hyperparameters (the JSON file at SHIPYARD_HYPERPARAMS); none outside a run."""
    path = os.environ.get("SHIPYARD_HYPERPARAMS")
    return json.loads(Path(path).read_text()) if path else {}


def main() -> None:
    hp = hyperparameters()
    epochs = int(hp.get("epochs", "5"))
    lr = float(hp.get("lr", "0.01"))
    alpha = float(hp.get("alpha", "0.0001"))
    x, y = load()
    x = x / 16.0
    x_train, x_test, y_train, y_test = train_test_split(x, y, test_size=0.25, random_state=0, stratify=y)
    model = SGDClassifier(loss="log_loss", learning_rate="constant", eta0=lr, alpha=alpha, random_state=0)
    classes = np.unique(y)
    for epoch in range(1, epochs + 1):
        model.partial_fit(x_train, y_train, classes=classes)
        loss = log_loss(y_test, model.predict_proba(x_test), labels=classes)
        accuracy = accuracy_score(y_test, model.predict(x_test))
        log_metrics(step=epoch, loss=round(float(loss), 5), accuracy=round(float(accuracy), 5))
        # Not as name=value: stdout in that form is read as metrics too, and these are logged above.
        print(f"epoch {epoch}/{epochs}: loss {loss:.4f}, accuracy {accuracy:.4f}", flush=True)
    out = Path(os.environ.get("SHIPYARD_OUTPUT", "out"))
    out.mkdir(parents=True, exist_ok=True)
    joblib.dump(model, out / "model.joblib")
    (out / "metrics.json").write_text(json.dumps({"loss": loss, "accuracy": accuracy, "epochs": epochs}))


if __name__ == "__main__":
    main()

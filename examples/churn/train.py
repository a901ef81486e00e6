"""Training run written for platforms of this kind, unchanged: data at /train-data, the model at /model.

Reads ``churn.csv`` (columns: tenure, monthly, support_calls, churned) with pandas, fits a logistic
regression with scikit-learn 1.3 (what requirements.txt pins), prints ``accuracy=…`` (a metric: Katib's
stdout format) and writes ``model.joblib`` to /model. It imports nothing of Shipyard's.
"""

from __future__ import annotations

import sys
from pathlib import Path

import joblib
import pandas as pd
import sklearn
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split

DATA = Path("/train-data/churn.csv")
MODEL = Path("/model")


def main() -> None:
    if not sklearn.__version__.startswith("1.3."):
        sys.exit(f"this script needs scikit-learn 1.3 (requirements.txt), not {sklearn.__version__}")
    table = pd.read_csv(DATA)
    features, target = table[["tenure", "monthly", "support_calls"]], table["churned"]
    x_train, x_test, y_train, y_test = train_test_split(features, target, test_size=0.25, random_state=0)
    model = LogisticRegression(max_iter=500).fit(x_train, y_train)
    print(f"scikit-learn {sklearn.__version__}, pandas {pd.__version__}")
    print(f"accuracy={model.score(x_test, y_test):.4f}")
    MODEL.mkdir(parents=True, exist_ok=True)
    joblib.dump(model, MODEL / "model.joblib")


if __name__ == "__main__":
    main()

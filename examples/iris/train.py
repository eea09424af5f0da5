"""Train the iris example: a logistic regression saved as model.joblib beside this file."""

from pathlib import Path

import joblib
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression


def main() -> None:
    X, y = load_iris(return_X_y=True)
    model = LogisticRegression(max_iter=1000).fit(X, y)
    out = Path(__file__).with_name("model.joblib")
    joblib.dump(model, out)
    print(f"trained {type(model).__name__} on {len(X)} rows; saved {out}")


if __name__ == "__main__":
    main()

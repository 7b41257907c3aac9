"""What the tests' two slowest fixtures cost, the old way and the new, measured side by side (same load).

    python benchmarks/fixture_costs.py [--repeats 3]

1. A fresh SQLite tracking store: MLflow creating and migrating one (the old ``tracking_uri``) against a
   copy of one migrated template (``tests/helpers.copy_sqlite_store``), each followed by the fixture's
   first call (create an experiment).
2. Logging the CLI tests' random forest: ``mlflow.sklearn.log_model`` inferring the requirements (a
   subprocess that loads the model) against the same call with them declared.

The two ways alternate within each repeat; medians in seconds, with the load average.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import mlflow
from mlflow.tracking import MlflowClient
from sklearn.datasets import load_diabetes
from sklearn.ensemble import RandomForestRegressor

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.helpers import copy_sqlite_store, migrate_sqlite_store  # noqa: E402


def _timed(work, *args, **kwargs) -> float:
    start = time.perf_counter()
    work(*args, **kwargs)
    return time.perf_counter() - start


def _first_use(uri: str, folder: Path) -> None:
    MlflowClient(uri).create_experiment("tests", artifact_location=(folder / "artifacts").as_uri())


def _copy_and_use(template: Path, folder: Path) -> None:
    _first_use(copy_sqlite_store(template, folder), folder)


def store_costs(root: Path, repeats: int) -> dict[str, list[float]]:
    template = root / "template.db"
    migrate_sqlite_store(template)
    times = {"migrated by MLflow": [], "copied template": []}
    for repeat in range(repeats):
        fresh, copied = root / f"fresh{repeat}", root / f"copied{repeat}"
        fresh.mkdir()
        copied.mkdir()
        times["migrated by MLflow"].append(_timed(_first_use, f"sqlite:///{fresh / 'mlflow.db'}", fresh))
        times["copied template"].append(_timed(_copy_and_use, template, copied))
    return times


def log_model_costs(root: Path, repeats: int) -> dict[str, list[float]]:
    X, y = load_diabetes(return_X_y=True, as_frame=True)
    model = RandomForestRegressor(n_estimators=20, random_state=0).fit(X.iloc[:300], y.iloc[:300])
    declared = [*mlflow.sklearn.get_default_pip_requirements(include_cloudpickle=False), "skops"]
    trusted = ["sklearn.tree._tree.Tree"]
    mlflow.set_tracking_uri(copy_sqlite_store(root / "template.db", root))
    times = {"requirements inferred": [], "requirements declared": []}

    def log(**options):
        with mlflow.start_run():
            mlflow.sklearn.log_model(model, name="model", skops_trusted_types=trusted, **options)

    for _ in range(repeats):
        times["requirements inferred"].append(_timed(log))
        times["requirements declared"].append(_timed(log, pip_requirements=declared))
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    repeats = parser.parse_args().repeats
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        results = {**store_costs(root, repeats), **log_model_costs(root, repeats)}
    print(f"load average {load_before:.1f} before, {os.getloadavg()[0]:.1f} after; {repeats} repeats\n")
    print("| fixture step | median s | all s |")
    print("|---|---|---|")
    for name, seconds in results.items():
        print(f"| {name} | {statistics.median(seconds):.2f} | {', '.join(f'{s:.2f}' for s in seconds)} |")


if __name__ == "__main__":
    main()

"""What ``mlflow_explain.autolog()`` adds to a hyperparameter sweep: a 30-trial Optuna study, with and without it.

Each trial fits a random forest on generated data (3,000 rows x 20 features, 1,000 of them for
validation; ``make_classification``, seeded) in a nested run
(``mlflow.start_run(nested=True)``) and logs its validation accuracy, the way Optuna users track
sweeps in MLflow. The same study (same seed, same trials) runs without the plugin and with
``mlflow_explain.autolog(validation_data=...)`` at its default setting (``sweeps.nested: light``),
side by side in one process, alternating, on a SQLite store in a temporary folder; ``--full`` also
runs it with every trial explained in full (``nested="full"``), for reference. Wall seconds of the
whole study, the median over ``--rounds``.

    python benchmarks/sweep_overhead.py [--trials 30] [--rounds 2] [--full]
"""

from __future__ import annotations

import argparse
import logging
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import mlflow  # noqa: E402
import optuna  # noqa: E402
from sklearn.datasets import make_classification  # noqa: E402
from sklearn.ensemble import RandomForestClassifier  # noqa: E402
from sklearn.model_selection import train_test_split  # noqa: E402

import mlflow_explain  # noqa: E402

MODES = {"off": None, "light (default)": "light", "full": "full"}


def sweep(n_trials: int, data: tuple) -> float:
    """Wall seconds of an Optuna study of ``n_trials`` random forests, each in a nested run of one parent run."""
    X_train, X_val, y_train, y_val = data

    def objective(trial: optuna.Trial) -> float:
        with mlflow.start_run(nested=True):
            params = {
                "n_estimators": trial.suggest_int("n_estimators", 20, 100),
                "max_depth": trial.suggest_int("max_depth", 3, 10),
            }
            mlflow.log_params(params)
            model = RandomForestClassifier(**params, random_state=0).fit(X_train, y_train)
            accuracy = model.score(X_val, y_val)
            mlflow.log_metric("val_accuracy", accuracy)
            return accuracy

    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(seed=0))
    started = time.perf_counter()
    with mlflow.start_run(run_name="sweep"):
        study.optimize(objective, n_trials=n_trials)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=30)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--full", action="store_true", help="also time every trial explained in full")
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    logging.getLogger("mlflow_explain").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore")
    X, y = make_classification(n_samples=3000, n_features=20, n_informative=8, random_state=0)
    data = train_test_split(X, y, test_size=1000, random_state=0)
    modes = [mode for mode in MODES if args.full or mode != "full"]
    seconds: dict[str, list[float]] = {mode: [] for mode in modes}
    with tempfile.TemporaryDirectory() as folder:
        mlflow.set_tracking_uri(f"sqlite:///{folder}/mlflow.db")
        mlflow.set_experiment("sweep_overhead")
        sweep(2, data)  # warm up: imports, the store's tables
        for _ in range(args.rounds):
            for mode in modes:
                if MODES[mode] is None:
                    mlflow_explain.autolog(disable=True)
                else:
                    mlflow_explain.autolog(validation_data=(data[1], data[3]), nested=MODES[mode])
                seconds[mode].append(sweep(args.trials, data))
        mlflow_explain.autolog(disable=True)
    off = statistics.median(seconds["off"])
    print(f"{args.trials}-trial Optuna sweep, {len(data[1])} validation rows, median of {args.rounds} rounds")
    print("| plugin | seconds (each round) | median | ratio to off |")
    print("|---|---|---:|---:|")
    for mode, values in seconds.items():
        median = statistics.median(values)
        shown = ", ".join(f"{value:.1f}" for value in values)
        print(f"| {mode} | {shown} | {median:.1f} | {median / off:.2f}x |")


if __name__ == "__main__":
    main()

"""Latency of explanations at serving time: mlflow_explain's explainer against mlflow.shap and the bare model.

Generated regression data (2,000 rows, 10 features) fits a 100-tree random forest (depth 8) and a
linear regression. Each is logged three ways into a private SQLite store and loaded with
``mlflow.pyfunc.load_model``:

- ``mlflow_explain.log_explainer`` (prediction + SHAP values per row: TreeSHAP for the forest, the
  linear explainer for the linear model, background 100 seeded rows);
- ``mlflow.shap.log_explainer`` of shap's explainer with the same background rows: it works for the
  linear model; for the forest it fails (MLflow issue 6771) and the failure is reported;
- ``mlflow.sklearn.log_model``: the model's own prediction.

Each is timed on requests of 1 and 100 rows (median of ``--repeats``, after one warm-up call) in
this process; rows per second are also measured on 1,000-row batches. With ``--http`` the forest's
explainer and the bare forest are also served by ``mlflow models serve --env-manager local`` and
asked over HTTP (JSON ``dataframe_split``). The machine is shared: the figures are noisy, and the
load average is printed with them.

    python benchmarks/serving_latency.py [--repeats 20] [--http] [--output benchmarks/SERVING_LATENCY.md]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import shap
from sklearn.ensemble import RandomForestRegressor
from sklearn.linear_model import LinearRegression

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import mlflow_explain  # noqa: E402
from tests.server import ModelServer  # noqa: E402

N_FEATURES, BACKGROUND_ROWS = 10, 100
SIZES = (1, 100)
THROUGHPUT_ROWS = 1000


def generate(n_rows: int = 2000, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    """Rows with 10 features (a few informative, interacting) and a noisy target."""
    rng = np.random.RandomState(seed)
    X = pd.DataFrame(rng.randn(n_rows, N_FEATURES), columns=[f"f{i}" for i in range(N_FEATURES)])
    y = 3 * X["f0"] + 2 * X["f1"] * X["f2"] + np.sin(3 * X["f3"]) + 0.3 * rng.randn(n_rows)
    return X, y.to_numpy()


def seeded_background(X: pd.DataFrame) -> pd.DataFrame:
    """The background rows log_explainer keeps (shap.random_state 0): the second permutation of the seed's draws."""
    rng = np.random.RandomState(0)
    rng.permutation(len(X))
    return X.iloc[np.sort(rng.permutation(len(X))[:BACKGROUND_ROWS])]


def median_seconds(call: Callable[[], object], repeats: int) -> float:
    call()  # warm-up: caches, lazy imports
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        call()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def timings(predict: Callable[[pd.DataFrame], object], X: pd.DataFrame, repeats: int) -> dict[str, float]:
    """Median latency per request of 1 and 100 rows (ms), and rows per second on 1,000-row batches."""
    figures = {f"{n} row(s) ms": 1000 * median_seconds(lambda n=n: predict(X.iloc[:n]), repeats) for n in SIZES}
    batch = X.iloc[:THROUGHPUT_ROWS]
    figures["rows/s"] = THROUGHPUT_ROWS / median_seconds(lambda: predict(batch), max(3, repeats // 5))
    return figures


def logged_models(models: dict[str, object], X: pd.DataFrame) -> tuple[dict[str, str], dict[str, str]]:
    """Model URIs of every way of logging each model, and the failures (what could not be logged or loaded)."""
    uris, failures = {}, {}
    background = seeded_background(X)
    with mlflow.start_run():
        for name, model in models.items():
            uris[f"{name}: mlflow_explain.log_explainer"] = mlflow_explain.log_explainer(
                model, background=X, name=f"{name}_explainer"
            ).model_uri
            uris[f"{name}: model's own predict"] = mlflow.sklearn.log_model(
                model, name=f"{name}_model", serialization_format="cloudpickle", pip_requirements=["scikit-learn"]
            ).model_uri
            try:
                explainer = shap.TreeExplainer(model) if name == "forest" else shap.LinearExplainer(model, background)
                uri = mlflow.shap.log_explainer(explainer, name=f"{name}_shap").model_uri
                mlflow.pyfunc.load_model(uri)
                uris[f"{name}: mlflow.shap.log_explainer"] = uri
            except Exception as err:  # MLflow issue 6771 for tree ensembles
                failures[f"{name}: mlflow.shap.log_explainer"] = f"{type(err).__name__}: {str(err).splitlines()[0]}"
    return uris, failures


def http_timings(uri: str, X: pd.DataFrame, repeats: int, folder: Path, tracking_uri: str) -> dict[str, float]:
    """Latency per request over HTTP of ``mlflow models serve`` (JSON dataframe_split)."""
    server = ModelServer(folder, uri, tracking_uri).start()
    try:

        def post(rows: pd.DataFrame) -> None:
            body = json.dumps({"dataframe_split": json.loads(rows.to_json(orient="split", index=False))}).encode()
            request = urllib.request.Request(f"{server.url}/invocations", body, {"Content-Type": "application/json"})
            with urllib.request.urlopen(request, timeout=120) as response:
                response.read()

        return timings(post, X, repeats)
    finally:
        server.stop()


def markdown(rows: dict[str, dict[str, float]], failures: dict[str, str], agreement: float, command: str) -> str:
    columns = [f"{n} row(s) ms" for n in SIZES] + ["rows/s"]
    lines = [
        "# Serving latency: explanations per request",
        "",
        f"`{command}`; load average at the end: {os.getloadavg()[0]:.2f} ({os.cpu_count()} cores, shared).",
        "",
        "| model: logged with | " + " | ".join(columns) + " |",
        "|---|" + "---:|" * len(columns),
    ]
    for name, figures in rows.items():
        lines.append(f"| {name} | " + " | ".join(f"{figures[column]:,.1f}" for column in columns) + " |")
    lines += ["", *[f"- {name}: failed ({why})" for name, why in failures.items()]]
    lines.append(f"- Largest gap between the two linear explainers' SHAP values (same background): {agreement:.2e}")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--http", action="store_true", help="also time the forest over mlflow models serve")
    parser.add_argument("--output", type=Path, help="also write the table (markdown) to this file")
    arguments = parser.parse_args()
    X, y = generate()
    models = {
        "forest": RandomForestRegressor(n_estimators=100, max_depth=8, random_state=0, n_jobs=1).fit(X, y),
        "linear": LinearRegression().fit(X, y),
    }
    with tempfile.TemporaryDirectory(prefix="serving_latency_") as folder:
        tracking_uri = f"sqlite:///{Path(folder) / 'mlflow.db'}"
        mlflow.set_tracking_uri(tracking_uri)
        uris, failures = logged_models(models, X)
        loaded = {name: mlflow.pyfunc.load_model(uri) for name, uri in uris.items()}
        rows = {f"{name} (in process)": timings(model.predict, X, arguments.repeats) for name, model in loaded.items()}
        ours = loaded["linear: mlflow_explain.log_explainer"].predict(X.iloc[:100])
        theirs = np.asarray(loaded["linear: mlflow.shap.log_explainer"].predict(X.iloc[:100]))
        agreement = float(np.abs(ours[[f"shap:prediction:{c}" for c in X.columns]].to_numpy() - theirs).max())
        if arguments.http:
            for name in ("forest: mlflow_explain.log_explainer", "forest: model's own predict"):
                server_folder = Path(folder) / name.split(": ")[1].replace(" ", "_").replace("'", "")
                server_folder.mkdir()
                rows[f"{name} (HTTP)"] = http_timings(uris[name], X, arguments.repeats, server_folder, tracking_uri)
    command = "python benchmarks/serving_latency.py " + " ".join(sys.argv[1:])
    text = markdown(rows, failures, agreement, command.strip())
    uptime = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    text += f"- `uptime` at the end: {uptime}\n"
    sys.stdout.write(text)
    if arguments.output:
        arguments.output.write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()

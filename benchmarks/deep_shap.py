"""Deep SHAP (issue 15 items 3-4) against shap's DeepExplainer and the sampled path, side by side in one run.

Two cases on scikit-learn's breast cancer data (30 features, 400 training rows, 169 validation
rows explained, 100 seeded background rows), every contender given the same rows and background:

- a 3-layer ReLU PyTorch MLP (two logits): ``mlflow_explain.methods.deep_shap.deep_shap_values``
  (every output, its own additivity check included) against ``shap.DeepExplainer`` on the same
  module; target: ours >= 50x faster, values equal (max abs diff <= 1e-4 x max |value|);
- a scikit-learn Pipeline (StandardScaler, MLPClassifier): ``methods.shap.shap_values`` as the
  engine calls it (``algorithm: auto``, which takes the deep path) against the same call with
  ``algorithm: permutation`` (the sampled model-agnostic path every MLP took before); target:
  ours >= 100x faster, additivity error <= 1e-5.

The fast paths are timed as the median of ``--repeats`` runs; the slow ones run once (tens of
seconds each). Timings on a shared machine are noisy: the load average is printed with them.
``--threads N`` sets torch's intra-op threads for every contender: on a machine busier than its
cores, two OpenMP threads wait on each other in every large batched operation (the deep path ran
7x slower with two threads than with one at load 15 on 2 cores), while DeepExplainer's small
per-row passes stay on one thread anyway.

    python benchmarks/deep_shap.py [--repeats N] [--threads N] [--cases torch,pipeline]
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np
import pandas as pd
import shap
import torch
from permutation_engine import medians_of  # benchmarks/ is on the path when run as a script
from run import machine
from sklearn.datasets import load_breast_cancer
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from torch import nn

from mlflow_explain.methods.deep_shap import deep_shap_values
from mlflow_explain.methods.shap import shap_values
from mlflow_explain.models import detect_task

N_BACKGROUND = 100
SEED = 0


def _data() -> tuple[pd.DataFrame, pd.DataFrame, np.ndarray, np.ndarray]:
    X, y = load_breast_cancer(return_X_y=True, as_frame=True)
    return train_test_split(X, np.asarray(y), test_size=169, random_state=SEED, stratify=y)


def _torch_mlp(X: np.ndarray, y: np.ndarray) -> nn.Sequential:
    """A 3-layer ReLU MLP (30-64-32-2), full-batch Adam on cross-entropy, in eval mode."""
    torch.manual_seed(SEED)
    module = nn.Sequential(nn.Linear(30, 64), nn.ReLU(), nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 2))
    X_t, y_t = torch.tensor(X, dtype=torch.float32), torch.tensor(y, dtype=torch.long)
    optimizer = torch.optim.Adam(module.parameters(), lr=1e-2)
    for _ in range(200):
        optimizer.zero_grad()
        nn.functional.cross_entropy(module(X_t), y_t).backward()
        optimizer.step()
    return module.eval()


def _timed(function) -> tuple[float, object]:
    started = time.perf_counter()
    result = function()
    return time.perf_counter() - started, result


def torch_case(repeats: int) -> str:
    """The PyTorch MLP: deep_shap_values against shap.DeepExplainer, one table row."""
    X_train, X_val, y_train, _ = _data()
    scaler = StandardScaler().fit(X_train)
    train, rows = scaler.transform(X_train), scaler.transform(X_val)
    module = _torch_mlp(train, y_train)
    background = train[np.random.RandomState(SEED).permutation(len(train))[:N_BACKGROUND]]
    ours = deep_shap_values(module, rows, background)
    fast = medians_of({"ours": lambda: deep_shap_values(module, rows, background)}, repeats)["ours"]

    def deep_explainer() -> np.ndarray:
        explainer = shap.DeepExplainer(module, torch.tensor(background, dtype=torch.float32))
        return np.asarray(explainer.shap_values(torch.tensor(rows, dtype=torch.float32)))

    slow, theirs = _timed(deep_explainer)
    theirs = theirs.reshape(ours.values.shape)
    relative = np.max(np.abs(ours.values - theirs)) / np.max(np.abs(theirs))
    return (
        f"| PyTorch 3-layer ReLU MLP (30-64-32-2) | {len(rows)} x {N_BACKGROUND} | shap.DeepExplainer | {slow:.2f} | "
        f"{fast:.3f} ({ours.method}) | {slow / fast:.0f}x (>= 50x) | {relative:.1e} (<= 1e-4) | "
        f"{_gap(ours.values, ours.base_values, module, rows):.1e} |"
    )


def _gap(values: np.ndarray, base: np.ndarray, module: nn.Module, rows: np.ndarray) -> float:
    with torch.no_grad():
        outputs = module(torch.tensor(rows, dtype=torch.float32)).numpy()
    return float(np.max(np.abs(values.sum(axis=1) + base - outputs)))


def mlp_pipeline_case(repeats: int) -> str:
    """The MLPClassifier Pipeline: shap_values' deep path against its sampled path, one table row."""
    X_train, X_val, y_train, y_val = _data()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model = make_pipeline(
            StandardScaler(), MLPClassifier(hidden_layer_sizes=(64, 32), max_iter=300, random_state=SEED)
        ).fit(X_train, y_train)
    task = detect_task(model, y_val)
    options = {"feature_names": list(X_val.columns), "max_rows": len(X_val), "background_rows": N_BACKGROUND}

    def explain(algorithm: str):
        return shap_values(model, X_val, task, algorithm=algorithm, **options)

    ours = explain("auto")
    fast = medians_of({"ours": lambda: explain("auto")}, repeats)["ours"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        slow, sampled = _timed(lambda: explain("permutation"))
    return (
        f"| Pipeline(StandardScaler, MLPClassifier(64, 32)) | {len(ours.row_positions)} x {ours.n_background} | "
        f"sampled path ({sampled.algorithm}, {len(sampled.row_positions)} rows) | {slow:.2f} | "
        f"{fast:.3f} ({ours.algorithm}) | {slow / fast:.0f}x (>= 100x) | - | "
        f"{ours.max_additivity_error:.1e} (<= 1e-5) |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's)")
    parser.add_argument("--cases", default="torch,pipeline", help="comma-separated: torch, pipeline")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"Machine: {machine()}; torch threads {torch.get_num_threads()}\n")
    print(
        "| case | rows x background | against | their s | ours s (path) | speed-up (target) | "
        "max abs diff / max abs value (target) | additivity error (target) |"
    )
    print("|---|---|---|---:|---:|---:|---:|---:|")
    cases = {"torch": torch_case, "pipeline": mlp_pipeline_case}
    for name in args.cases.split(","):
        print(cases[name](args.repeats), flush=True)
    print(f"\nLoad average after: {machine().split('load average ')[1].split(' (')[0]}")


if __name__ == "__main__":
    main()

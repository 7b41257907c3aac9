"""Permutation importance of a PyTorch module against its limit: one batched forward over all permuted rows.

For each case the same module and rows go to every contender, timed round-robin (so load from
other processes hits all of them alike) and reported as medians:

- limit: one forward of the module, in eval mode under ``torch.inference_mode()``, over every
  permuted copy the method needs plus the unpermuted rows (n_rows x (n_features x n_repeats + 1)),
  the stacked float32 tensor built before the clock starts (also printed: the same forward in
  ``torch.batch_size`` chunks, which is often faster than one huge batch on a CPU: cache);
- ours: ``mlflow_explain.methods.permutation.permutation_importance`` on the adapter
  ``torch_tabular.torch_estimator`` builds (its copies stacked into engine batches within the
  memory budget, each forwarded ``torch.batch_size`` rows at a time), with the default scorer;
- sklearn: ``sklearn.inspection.permutation_importance`` on a plain predict wrapper of the same
  module (one forward per feature and repeat, same seed), whose importances must equal ours (the
  largest difference is printed).

The target of issue 15: ours within 1.25x of the limit.

    python benchmarks/torch_permutation.py [--quick] [--repeats N] [--threads N]
"""

from __future__ import annotations

import argparse
import os
import platform
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from sklearn.datasets import load_breast_cancer, make_classification, make_regression
from sklearn.inspection import permutation_importance as sklearn_permutation_importance
from sklearn.model_selection import train_test_split
from torch import nn

from benchmarks.permutation_engine import medians_of, permuted_rows
from mlflow_explain.engines.torch_adapter import torch_estimator
from mlflow_explain.methods.permutation import permutation_importance
from tests.torch_tabular_models import ModuleClassifier, ModuleRegressor

N_REPEATS = 5
TARGET = 1.25


@dataclass
class Case:
    name: str
    module: nn.Module
    X: pd.DataFrame
    y: np.ndarray
    classifier: bool


def relu_mlp(n_features: int, n_outputs: int, hidden: int) -> nn.Sequential:
    """Standardizing BatchNorm, then three Linear layers with ReLU between them."""
    return nn.Sequential(
        nn.BatchNorm1d(n_features),
        nn.Linear(n_features, hidden),
        nn.ReLU(),
        nn.Linear(hidden, hidden),
        nn.ReLU(),
        nn.Linear(hidden, n_outputs),
    )


def fitted(module: nn.Module, X: pd.DataFrame, y: np.ndarray, classifier: bool, steps: int) -> nn.Module:
    """``module`` trained full-batch with Adam (cross-entropy, or MSE on the standardized target)."""
    inputs = torch.tensor(X.to_numpy(), dtype=torch.float32)
    if classifier:
        targets, loss = torch.tensor(y), nn.functional.cross_entropy
    else:
        targets, loss = torch.tensor((y - y.mean()) / y.std(), dtype=torch.float32)[:, None], nn.functional.mse_loss
    optimizer = torch.optim.Adam(module.parameters(), lr=1e-2)
    for _ in range(steps):
        optimizer.zero_grad()
        loss(module(inputs), targets).backward()
        optimizer.step()
    return module.eval()


def _split(X: np.ndarray | pd.DataFrame, y: np.ndarray, validation: float) -> tuple:
    X = X if isinstance(X, pd.DataFrame) else pd.DataFrame(X, columns=[f"f{i}" for i in range(X.shape[1])])
    return train_test_split(X.astype("float32"), y, test_size=validation, random_state=0)


def breast_cancer_case(quick: bool) -> Case:
    X, y = load_breast_cancer(return_X_y=True, as_frame=True)
    X_train, X_val, y_train, y_val = _split(X, y.to_numpy(), 0.3)
    module = fitted(relu_mlp(30, 2, 64), X_train, y_train, True, steps=100)
    return Case(f"3-layer ReLU MLP (64 wide), breast cancer ({len(X_val)} validation rows)", module, X_val, y_val, True)


def wide_classifier_case(quick: bool) -> Case:
    n_rows = 2_500 if quick else 10_000
    X, y = make_classification(n_samples=n_rows, n_features=30, n_informative=12, n_classes=3, random_state=0)
    X_train, X_val, y_train, y_val = _split(X, y, 0.2)
    module = fitted(relu_mlp(30, 3, 256), X_train, y_train, True, steps=60)
    return Case(f"3-layer ReLU MLP (256 wide), 3 classes, 30 features ({len(X_val)} rows)", module, X_val, y_val, True)


def regressor_case(quick: bool) -> Case:
    n_rows = 2_500 if quick else 10_000
    X, y = make_regression(n_samples=n_rows, n_features=20, n_informative=10, noise=5.0, random_state=0)
    X_train, X_val, y_train, y_val = _split(X, y, 0.2)
    module = fitted(relu_mlp(20, 1, 256), X_train, y_train, False, steps=60)
    name = f"3-layer ReLU MLP (256 wide), regression, 20 features ({len(X_val)} rows)"
    return Case(name, module, X_val, y_val, False)


def run_case(case: Case, repeats: int) -> list[str]:
    adapter = torch_estimator(case.module, case.X, case.y)
    stacked = torch.tensor(
        pd.concat([case.X, permuted_rows(case.X, N_REPEATS)], ignore_index=True).to_numpy(), dtype=torch.float32
    )

    def limit() -> None:
        with torch.inference_mode():
            case.module(stacked)

    def limit_batched() -> None:
        with torch.inference_mode():
            for batch in stacked.split(adapter.batch_size):
                case.module(batch)

    def ours() -> object:
        return permutation_importance(adapter, case.X, case.y, n_repeats=N_REPEATS, random_state=0)

    wrapper = ModuleClassifier(case.module) if case.classifier else ModuleRegressor(case.module)

    def sklearn() -> object:
        return sklearn_permutation_importance(wrapper, case.X, case.y, n_repeats=N_REPEATS, random_state=0)

    medians = medians_of({"limit": limit, "limit_batched": limit_batched, "ours": ours, "sklearn": sklearn}, repeats)
    result, reference = ours(), sklearn()
    scorer = result.scorer_names[0]
    gap = float(np.abs(result.importances[scorer] - reference.importances).max())
    labels = {
        "limit": f"limit (one forward over all {len(stacked):,} rows)",
        "limit_batched": f"the same rows forwarded {adapter.batch_size} at a time",
        "ours": f"ours ({result.n_predict_calls} engine batch(es), {adapter.batch_size} rows per forward)",
        "sklearn": "sklearn.inspection.permutation_importance (plain wrapper)",
    }
    rows = [
        f"| {case.name} | {labels[name]} | {seconds:.3f} | {seconds / medians['limit']:.2f} |"
        for name, seconds in medians.items()
    ]
    ratio = medians["ours"] / medians["limit"]
    verdict = "met" if ratio <= TARGET else "NOT met"
    note = f"{scorer}: max abs difference from sklearn {gap:.1e}; target {TARGET}x {verdict}"
    rows.append(f"| {case.name} | {note} | | |")
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller data, fewer repeats")
    parser.add_argument("--repeats", type=int, default=None, help="timed repeats per contender (default 5, quick 3)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1: steadier on a shared box)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    repeats = args.repeats or (3 if args.quick else 5)
    print(
        f"Machine: {platform.system()} {platform.machine()}, {os.cpu_count()} cores, load average "
        f"{'/'.join(f'{v:.1f}' for v in os.getloadavg())}; torch {torch.__version__}, {args.threads} thread(s); "
        f"n_repeats={N_REPEATS}, medians of {repeats} round-robin runs.\n"
    )
    print("| case | contender | median s | x limit |\n|---|---|---|---|")
    for make in (breast_cancer_case, wide_classifier_case, regressor_case):
        for row in run_case(make(args.quick), repeats):
            print(row, flush=True)


if __name__ == "__main__":
    main()

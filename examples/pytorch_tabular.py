"""PyTorch on tabular data: train an MLP on breast cancer, log it with mlflow.pytorch, explain it into the run.

The module is explained as it is (no wrapper): its task (two logits and labels 0/1 make a binary
classifier) is read from its outputs and the target, and its predictions run in batches on its
own device, in eval mode, without gradients. The module logged with ``mlflow.pytorch`` can be
explained again later from the command line, as any logged model (the command is printed).

pip install -e ".[torch]" -c constraints/ci.txt && python examples/pytorch_tabular.py
"""

from __future__ import annotations

import logging
import os

import mlflow
import torch
from example_store import TRACKING_URI, browse_hint
from mlflow.models import infer_signature
from sklearn.datasets import load_breast_cancer
from sklearn.model_selection import train_test_split
from torch import nn

import mlflow_explain

EPOCHS = int(os.environ.get("TABULAR_EPOCHS", "200"))
# SHAP of a torch module is shap's sampled model-agnostic explainer for now (it compiles numba kernels on first
# use): a few rows keep it quick.
CONFIG = {"shap": {"permutation_max_rows": 5, "background_rows": 20}}


def train(X_train, y_train) -> nn.Module:
    """A 3-layer ReLU MLP (BatchNorm first: it standardizes the raw columns), full-batch Adam on cross-entropy."""
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.BatchNorm1d(X_train.shape[1]),
        nn.Linear(X_train.shape[1], 32),
        nn.ReLU(),
        nn.Linear(32, 32),
        nn.ReLU(),
        nn.Linear(32, 2),
    )
    inputs, targets = torch.tensor(X_train.to_numpy(), dtype=torch.float32), torch.tensor(y_train.to_numpy())
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(EPOCHS):
        optimizer.zero_grad()
        nn.functional.cross_entropy(model(inputs), targets).backward()
        optimizer.step()
    return model


def main() -> str:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    mlflow.set_tracking_uri(TRACKING_URI)
    mlflow.set_experiment("mlflow_explain pytorch tabular")

    X, y = load_breast_cancer(return_X_y=True, as_frame=True)
    X_train, X_val, y_train, y_val = train_test_split(X, y, test_size=0.3, random_state=0, stratify=y)

    with mlflow.start_run(run_name="torch-mlp") as run:
        model = train(X_train, y_train)
        mlflow.log_param("epochs", EPOCHS)
        model.eval()
        with torch.no_grad():
            logits = model(torch.tensor(X_val.to_numpy(), dtype=torch.float32)).numpy()
        mlflow.log_metric("val_accuracy", float((logits.argmax(axis=1) == y_val.to_numpy()).mean()))
        info = mlflow.pytorch.log_model(
            model,
            name="model",
            serialization_format="pickle",
            signature=infer_signature(X_train, logits[:1]),
            pip_requirements=["torch"],
        )
        explanation = mlflow_explain.explain(model, X_val, y_val, config=CONFIG)

    top = explanation.importances.query("method == 'permutation'").nsmallest(3, "rank")
    print(f"Explained run {run.info.run_id} (status: {explanation.status}, task: {explanation.task.kind}).")
    print("How the module was read:", explanation.model_details["reason"])
    print("Top features by permutation importance:", ", ".join(top["feature"]))
    print(
        f"Explain the logged model again: mlflow-explain explain --model-uri {info.model_uri} --data val.csv "
        "--target label"
    )
    print("Browse it in the MLflow UI (the report is explain/report.html under the run's artifacts):")
    print(f"    {browse_hint()}")
    return run.info.run_id


if __name__ == "__main__":
    main()

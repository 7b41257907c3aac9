"""Lightning: with mlflow.pytorch.autolog() and mlflow_explain.autolog() on, each Trainer.fit explains itself.

    pip install -e ".[lightning]" -c constraints/ci.txt && python examples/lightning_autolog.py

Two models trained with Lightning on scikit-learn's bundled data, each in the run MLflow's
autologging makes for it (params, losses, the model), explained right after ``fit``:

- a small CNN on the digits (8x8 images): Grad-CAM heatmaps of the validation loader's images
  passed to ``fit``, and the faithfulness metrics gradcam/deletion_drop and gradcam/random_drop;
- an MLP on the breast-cancer table: permutation importance and SHAP values per feature, on
  validation rows given as a DataFrame with ``set_validation_data`` so the metrics carry the
  column names.

Takes a minute or two on a CPU (LIGHTNING_EPOCHS sets the number of epochs).
"""

from __future__ import annotations

import logging
import os

import lightning.pytorch as L
import mlflow
import numpy as np
import torch
from example_store import TRACKING_URI, browse_hint
from sklearn.datasets import load_breast_cancer, load_digits
from sklearn.model_selection import train_test_split
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import mlflow_explain

EPOCHS = int(os.environ.get("LIGHTNING_EPOCHS", "10"))


class Classifier(L.LightningModule):
    """``net`` returns class logits; Adam on the cross-entropy, the losses logged as train_loss and val_loss."""

    def __init__(self, net: nn.Module, lr: float = 1e-2):
        super().__init__()
        self.net, self.lr = net, lr

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_index: int) -> torch.Tensor:
        loss = nn.functional.cross_entropy(self(batch[0]), batch[1])
        self.log("train_loss", loss)
        return loss

    def validation_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_index: int) -> None:
        self.log("val_loss", nn.functional.cross_entropy(self(batch[0]), batch[1]))

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.Adam(self.parameters(), lr=self.lr)


def loader(X: np.ndarray, y: np.ndarray, shuffle: bool = False) -> DataLoader:
    dataset = TensorDataset(torch.as_tensor(X, dtype=torch.float32), torch.as_tensor(y, dtype=torch.int64))
    return DataLoader(dataset, batch_size=64, shuffle=shuffle, drop_last=shuffle)


def trainer() -> L.Trainer:
    return L.Trainer(
        max_epochs=EPOCHS, accelerator="cpu", logger=False, enable_checkpointing=False, enable_progress_bar=False
    )


def train_digits_cnn() -> None:
    """Images: the validation loader passed to fit is what Grad-CAM explains."""
    digits = load_digits()
    X = (digits.images / 16.0).astype(np.float32)[:, None]  # (n, 1, 8, 8), pixels in [0, 1]
    X_train, X_val, y_train, y_val = train_test_split(X, digits.target, test_size=0.3, random_state=0)
    cnn = nn.Sequential(
        nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(16 * 4 * 4, 10)
    )
    trainer().fit(Classifier(cnn), loader(X_train, y_train, shuffle=True), loader(X_val, y_val))


def train_cancer_mlp() -> None:
    """A table: validation rows set as a DataFrame (feature names), for the next run only."""
    X, y = load_breast_cancer(return_X_y=True, as_frame=True)
    X_train, X_val, y_train, y_val = train_test_split(X, y, test_size=0.3, random_state=0, stratify=y)
    mlp = nn.Sequential(nn.BatchNorm1d(30), nn.Linear(30, 32), nn.ReLU(), nn.Linear(32, 2))
    mlflow_explain.set_validation_data(X_val, y_val)
    trainer().fit(Classifier(mlp), loader(X_train.to_numpy(), y_train.to_numpy(), shuffle=True))


def main() -> list[str]:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    torch.manual_seed(0)
    mlflow.set_tracking_uri(TRACKING_URI)
    mlflow.set_experiment("mlflow_explain lightning")
    mlflow.pytorch.autolog(checkpoint=False)
    # The sampled model-agnostic SHAP explainer takes about a second per row of the MLP: cap its rows.
    mlflow_explain.autolog(config={"shap": {"permutation_max_rows": 50}})

    run_ids = []
    for name, train in (("digits CNN", train_digits_cnn), ("breast-cancer MLP", train_cancer_mlp)):
        train()
        run = mlflow.get_run(mlflow.last_active_run().info.run_id)
        run_ids.append(run.info.run_id)
        figures = {key: round(value, 4) for key, value in run.data.metrics.items() if key.startswith("gradcam/")}
        importances = {
            key.split("/", 1)[1]: value
            for key, value in run.data.metrics.items()
            if key.startswith("permutation_importance/")
        }
        top = sorted(importances, key=importances.get, reverse=True)[:3]
        print(
            f"{name}: run {run.info.run_id}  explanation: {run.data.tags.get('mlflow_explain.status')}  "
            f"train_loss {run.data.metrics['train_loss']:.3f}  "
            + (f"Grad-CAM {figures}" if figures else f"most important features {top}")
        )
    print("Browse them in the MLflow UI (explain/report.html under each run's artifacts):")
    print(f"    {browse_hint()}")
    return run_ids


if __name__ == "__main__":
    main()

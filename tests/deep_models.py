"""Small PyTorch networks trained briefly on scikit-learn data, and a stand-in for the PyTorch tabular adapter.

``TorchClassifier`` and ``TorchRegressor`` follow the contract of the package's PyTorch tabular
adapter that the deep SHAP path relies on (a ``PredictOnly`` model with ``torch_module`` and
``output_kind``, scikit-learn's classifier or regressor tags); they stand in for it in these tests.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch
from sklearn.base import ClassifierMixin, RegressorMixin
from sklearn.datasets import load_breast_cancer, load_diabetes, load_wine
from sklearn.preprocessing import StandardScaler
from torch import nn

from mlflow_explain.models import PredictOnly


class TorchRegressor(RegressorMixin, PredictOnly):
    """A PyTorch regressor seen as a tabular model: rows (frame or array) in, predictions out."""

    output_kind = "regression"

    @property
    def torch_module(self) -> nn.Module:
        return self.model

    def _forward(self, X) -> np.ndarray:
        with torch.no_grad():
            return self.model(torch.as_tensor(np.asarray(X, dtype=np.float32))).reshape(len(X), -1).numpy()

    def predict(self, X) -> np.ndarray:
        return self._forward(X)[:, 0].astype(float)


class TorchClassifier(ClassifierMixin, TorchRegressor):
    """A PyTorch classifier returning logits or probabilities (one column: the positive class of a binary task)."""

    def __init__(self, model: nn.Module, output_kind: str, classes):
        super().__init__(model)
        self.output_kind, self.classes = output_kind, classes

    @property
    def classes_(self) -> np.ndarray:
        return np.asarray(self.classes)

    def predict_proba(self, X) -> np.ndarray:
        out = torch.as_tensor(self._forward(X), dtype=torch.float64)
        if self.output_kind == "logits":
            out = torch.sigmoid(out) if out.shape[1] == 1 else torch.softmax(out, dim=1)
        out = out.numpy()
        return np.hstack([1 - out, out]) if out.shape[1] == 1 else out

    def predict(self, X) -> np.ndarray:
        return self.classes_[np.argmax(self.predict_proba(X), axis=1)]


def relu_mlp(n_in: int, n_out: int, *, seed: int = 0, last: nn.Module | None = None) -> nn.Sequential:
    """A 3-layer ReLU MLP (with dropout, so that eval mode matters), optionally ending in ``last``."""
    torch.manual_seed(seed)
    layers = [nn.Linear(n_in, 32), nn.ReLU(), nn.Dropout(0.1), nn.Linear(32, 16), nn.ReLU(), nn.Linear(16, n_out)]
    return nn.Sequential(*layers, *([last] if last is not None else []))


def fit(module: nn.Module, X: np.ndarray, y: np.ndarray, loss: str, steps: int = 150) -> nn.Module:
    """Full-batch Adam on (X, y): "bce" (one logit), "ce" (logits per class), "nll" (log of probabilities), "mse"."""
    X_t = torch.tensor(np.asarray(X), dtype=torch.float32)
    y_t = torch.tensor(np.asarray(y), dtype=torch.long if loss in ("ce", "nll") else torch.float32)
    optimizer = torch.optim.Adam(module.parameters(), lr=1e-2)
    losses = {
        "bce": lambda out: nn.functional.binary_cross_entropy_with_logits(out[:, 0], y_t),
        "ce": lambda out: nn.functional.cross_entropy(out, y_t),
        "nll": lambda out: nn.functional.nll_loss(torch.log(out + 1e-9), y_t),
        "mse": lambda out: nn.functional.mse_loss(out[:, 0], y_t),
    }
    module.train()
    for _ in range(steps):
        optimizer.zero_grad()
        losses[loss](module(X_t)).backward()
        optimizer.step()
    return module


def scaled(dataset: str) -> tuple[pd.DataFrame, np.ndarray]:
    """A bundled data set with standardized columns (a frame) and its target (diabetes: standardized too)."""
    loader = {"breast_cancer": load_breast_cancer, "diabetes": load_diabetes, "wine": load_wine}[dataset]
    X, y = loader(return_X_y=True, as_frame=True)
    X = pd.DataFrame(StandardScaler().fit_transform(X), columns=X.columns)
    y = np.asarray(y)
    return X, ((y - y.mean()) / y.std() if dataset == "diabetes" else y)

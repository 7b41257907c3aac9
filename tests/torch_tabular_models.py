"""Small PyTorch MLPs trained in a second on scikit-learn's bundled tables, and a scikit-learn wrapper of a module.

Built from ``torch.nn`` layers only (a BatchNorm1d first standardizes the raw columns), so that a
module pickled by ``mlflow.pytorch`` loads back anywhere.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.datasets import load_breast_cancer, load_diabetes
from sklearn.model_selection import train_test_split
from torch import nn


def breast_cancer() -> tuple[pd.DataFrame, pd.DataFrame, pd.Series, pd.Series]:
    """Breast cancer (30 features), split 70/30: X_train, X_val, y_train, y_val."""
    X, y = load_breast_cancer(return_X_y=True, as_frame=True)
    return tuple(train_test_split(X, y, test_size=0.3, random_state=0, stratify=y))


def diabetes() -> tuple[pd.DataFrame, pd.DataFrame, pd.Series, pd.Series]:
    """Diabetes (10 features, a float target), split 70/30: X_train, X_val, y_train, y_val."""
    X, y = load_diabetes(return_X_y=True, as_frame=True)
    return tuple(train_test_split(X, y, test_size=0.3, random_state=0))


def mlp(n_features: int, n_outputs: int, hidden: int = 16, seed: int = 0) -> nn.Sequential:
    """BatchNorm1d, then Linear-ReLU-Linear with ``n_outputs`` outputs."""
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.BatchNorm1d(n_features), nn.Linear(n_features, hidden), nn.ReLU(), nn.Linear(hidden, n_outputs)
    )


def trained(module: nn.Module, X: pd.DataFrame, y: pd.Series, loss: str, steps: int = 150) -> nn.Module:
    """``module`` fitted full-batch with Adam on ``loss`` ("cross_entropy", "logit" or "mse"); left in train mode."""
    inputs = torch.tensor(X.to_numpy(), dtype=torch.float32)
    if loss == "cross_entropy":
        targets, criterion = torch.tensor(y.to_numpy()), nn.functional.cross_entropy
    elif loss == "logit":
        targets, criterion = (
            torch.tensor(y.to_numpy(), dtype=torch.float32)[:, None],
            nn.functional.binary_cross_entropy_with_logits,
        )
    else:
        scale = float(y.std())
        targets = torch.tensor(y.to_numpy(), dtype=torch.float32)[:, None]
        with torch.no_grad():
            module[-1].bias.fill_(float(y.mean()))
            module[-1].weight.mul_(scale)

        def criterion(output, target):
            return nn.functional.mse_loss(output / scale, target / scale)

    optimizer = torch.optim.Adam(module.parameters(), lr=2e-2)
    for _ in range(steps):
        optimizer.zero_grad()
        criterion(module(inputs), targets).backward()
        optimizer.step()
    return module


class ModulePredictor(BaseEstimator):
    """A plain scikit-learn wrapper of a module in eval mode: one forward per call, no batching."""

    def __init__(self, module: nn.Module):
        self.module = module

    def fit(self, X, y=None) -> ModulePredictor:
        """Nothing to fit (the module is trained): scikit-learn's permutation_importance asks for the method."""
        return self

    def __sklearn_is_fitted__(self) -> bool:
        return True

    def outputs(self, X) -> torch.Tensor:
        with torch.no_grad():
            return self.module(torch.tensor(np.asarray(X), dtype=torch.float32)).double()


class ModuleRegressor(RegressorMixin, ModulePredictor):
    def predict(self, X) -> np.ndarray:
        return self.outputs(X)[:, 0].numpy()


class ModuleClassifier(ClassifierMixin, ModulePredictor):
    """Logits of classes 0..k-1 (one logit: class 1's)."""

    @property
    def classes_(self) -> np.ndarray:
        return np.arange(max(2, self.module[-1].out_features))

    def predict_proba(self, X) -> np.ndarray:
        logits = self.outputs(X)
        if logits.shape[1] == 1:
            positive = torch.sigmoid(logits[:, 0])
            return torch.stack([1 - positive, positive], dim=1).numpy()
        return torch.softmax(logits, dim=1).numpy()

    def predict(self, X) -> np.ndarray:
        return self.classes_[self.predict_proba(X).argmax(axis=1)]

"""Small Lightning classifiers trained in seconds on scikit-learn's bundled digits (as images) and breast cancer.

In a module of their own so that a module pickled by ``mlflow.pytorch`` can be loaded back. The same
classifier exists for ``lightning.pytorch`` and for the older ``pytorch_lightning`` package (when installed),
whose Trainer takes only its own LightningModule.
"""

from __future__ import annotations

from types import ModuleType

import lightning.pytorch as L
import numpy as np
import torch
from sklearn.datasets import load_breast_cancer, load_digits
from sklearn.model_selection import train_test_split
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

try:
    import pytorch_lightning
except ImportError:
    pytorch_lightning = None


class _ClassifierSteps:
    """``net``'s outputs are the class logits; Adam on the cross-entropy, the losses logged as train_loss and
    val_loss."""

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


class Classifier(_ClassifierSteps, L.LightningModule):
    """The classifier for ``lightning.pytorch``."""


if pytorch_lightning is not None:

    class OlderPackageClassifier(_ClassifierSteps, pytorch_lightning.LightningModule):
        """The classifier for ``pytorch_lightning``."""


def digits_cnn(classifier: type = Classifier) -> Classifier:
    """One 3x3 convolution on the 8x8 digit, max pooling, a linear layer over the 10 classes."""
    torch.manual_seed(0)
    return classifier(
        nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(128, 10))
    )


def cancer_mlp(n_features: int = 8) -> Classifier:
    """BatchNorm1d over the raw columns, then Linear-ReLU-Linear to two logits."""
    torch.manual_seed(0)
    return Classifier(nn.Sequential(nn.BatchNorm1d(n_features), nn.Linear(n_features, 16), nn.ReLU(), nn.Linear(16, 2)))


def digits(n_val: int = 200) -> tuple[TensorDataset, TensorDataset]:
    """Digits as (n, 1, 8, 8) images in [0, 1]: a training set and ``n_val`` validation images (stratified)."""
    data = load_digits()
    X, y = (data.images / 16.0).astype(np.float32)[:, None], data.target.astype(np.int64)
    return _split(X, y, n_val)


def breast_cancer(n_val: int = 120, n_features: int = 8) -> tuple[TensorDataset, TensorDataset]:
    """Breast cancer's first ``n_features`` columns as float32 rows: a training set and ``n_val`` validation rows
    (stratified)."""
    X, y = load_breast_cancer(return_X_y=True)
    return _split(X[:, :n_features].astype(np.float32), y.astype(np.int64), n_val)


def _split(X: np.ndarray, y: np.ndarray, n_val: int) -> tuple[TensorDataset, TensorDataset]:
    X_train, X_val, y_train, y_val = train_test_split(X, y, test_size=n_val, random_state=0, stratify=y)
    return (
        TensorDataset(torch.from_numpy(X_train), torch.from_numpy(y_train)),
        TensorDataset(torch.from_numpy(X_val), torch.from_numpy(y_val)),
    )


def loaders(train: TensorDataset, val: TensorDataset) -> tuple[DataLoader, DataLoader]:
    """Shuffled training batches of 64 (seeded; a last smaller one dropped, BatchNorm needs two rows), validation
    batches of 64 in order."""
    return (
        DataLoader(train, batch_size=64, shuffle=True, drop_last=True, generator=torch.Generator().manual_seed(0)),
        DataLoader(val, batch_size=64),
    )


class DataModule(L.LightningDataModule):
    """The training and validation sets behind ``train_dataloader`` and ``val_dataloader``."""

    def __init__(self, train: TensorDataset, val: TensorDataset):
        super().__init__()
        self.train, self.val = train, val

    def train_dataloader(self) -> DataLoader:
        return loaders(self.train, self.val)[0]

    def val_dataloader(self) -> DataLoader:
        return loaders(self.train, self.val)[1]


def quiet_trainer(package: ModuleType = L, **options) -> L.Trainer:
    """A CPU Trainer of ``package`` for tests: two epochs, no logger, checkpoints, progress bar or model summary
    (``options`` win)."""
    settings = {
        "max_epochs": 2,
        "accelerator": "cpu",
        "devices": 1,
        "logger": False,
        "enable_checkpointing": False,
        "enable_progress_bar": False,
        "enable_model_summary": False,
    }
    return package.Trainer(**(settings | options))

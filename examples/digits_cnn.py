"""The small CNN of examples/gradcam_digits.py, in its own module so that the logged model loads anywhere.

mlflow.pytorch pickles the model, which refers to its class by module and name; logging this
file with ``code_paths`` lets ``mlflow.pytorch.load_model`` (and ``mlflow-explain explain
--images``) import it in another process.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn


class DigitsCNN(nn.Module):
    """Two 3x3 convolutions on the 8x8 digit, then max pooling and a linear classifier."""

    def __init__(self, n_classes: int = 10):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 16, kernel_size=3, padding=1),
            nn.ReLU(),
            nn.Conv2d(16, 32, kernel_size=3, padding=1),
            nn.ReLU(),
        )
        self.classifier = nn.Sequential(
            nn.MaxPool2d(2), nn.Flatten(), nn.Dropout(0.2), nn.Linear(32 * 4 * 4, n_classes)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))


def train(model: nn.Module, X: np.ndarray, y: np.ndarray, epochs: int, lr: float = 2e-3) -> None:
    """Adam on the cross-entropy, mini-batches of 64, ``epochs`` passes; the model ends in eval mode."""
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    images, labels = torch.from_numpy(X), torch.from_numpy(y)
    model.train()
    for _ in range(epochs):
        for batch in torch.randperm(len(images)).split(64):
            optimizer.zero_grad()
            loss = nn.functional.cross_entropy(model(images[batch]), labels[batch])
            loss.backward()
            optimizer.step()
    model.eval()

"""Generated images whose class is a pattern at a random known place, and a small CNN that learns them.

In a module of its own so that a model pickled by ``mlflow.pytorch`` can be loaded back.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch
from torch import nn

SIZE = 20  # images are 1 x SIZE x SIZE
PATTERN = 5  # patterns are PATTERN x PATTERN
CLASS_NAMES = ["plus", "cross", "square"]


def _patterns() -> np.ndarray:
    patterns = np.zeros((3, PATTERN, PATTERN), dtype=np.float32)
    middle = PATTERN // 2
    patterns[0, middle, :] = patterns[0, :, middle] = 1  # plus
    diagonal = np.eye(PATTERN, dtype=bool)
    patterns[1][diagonal | diagonal[::-1]] = 1  # cross
    patterns[2, [0, -1], :] = patterns[2, :, [0, -1]] = 1  # hollow square
    return patterns


def pattern_images(n: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``n`` noisy images (n, 1, SIZE, SIZE), their class (the pattern drawn) and the pattern's top-left corner."""
    rng = np.random.RandomState(seed)
    images = rng.normal(0, 0.2, (n, 1, SIZE, SIZE)).astype(np.float32)
    labels = rng.randint(0, 3, n)
    corners = rng.randint(0, SIZE - PATTERN + 1, (n, 2))
    patterns = _patterns()
    for i, (row, column) in enumerate(corners):
        images[i, 0, row : row + PATTERN, column : column + PATTERN] += patterns[labels[i]]
    return images, labels.astype(np.int64), corners


def peaks_inside(maps: np.ndarray, corners: np.ndarray) -> np.ndarray:
    """Whether each map's maximum (n, SIZE, SIZE) lies in the pattern's box whose top-left corner is given (n, 2)."""
    rows, columns = np.unravel_index(maps.reshape(len(maps), -1).argmax(axis=1), maps.shape[1:])
    return (
        (rows >= corners[:, 0])
        & (rows < corners[:, 0] + PATTERN)
        & (columns >= corners[:, 1])
        & (columns < corners[:, 1] + PATTERN)
    )


class PatternNet(nn.Module):
    """conv - pool - conv feature map (10 x 10), global max pooling, linear classifier."""

    def __init__(self, n_classes: int = 3):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 8, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(8, 16, 3, padding=1),
            nn.ReLU(),
        )
        self.head = nn.Sequential(nn.AdaptiveMaxPool2d(1), nn.Flatten(), nn.Linear(16, n_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


class NoConvNet(nn.Module):
    """A classifier without any convolution."""

    def __init__(self):
        super().__init__()
        self.layers = nn.Sequential(nn.Flatten(), nn.Linear(SIZE * SIZE, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


def trained_pattern_net(n_train: int = 1000, epochs: int = 10, seed: int = 0) -> PatternNet:
    """A PatternNet trained with Adam on ``n_train`` generated images (seeded, one thread)."""
    torch.manual_seed(seed)
    images, labels, _ = pattern_images(n_train, seed)
    model = PatternNet()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    X, y = torch.from_numpy(images), torch.from_numpy(labels)
    for _ in range(epochs):
        for batch in torch.randperm(len(X)).split(64):
            optimizer.zero_grad()
            nn.functional.cross_entropy(model(X[batch]), y[batch]).backward()
            optimizer.step()
    return model.eval()


def digits_split() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """scikit-learn's 8x8 digits as images (n, 1, 8, 8) in [0, 1]: train and validation (30%, stratified, seeded)."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    X = (digits.images / 16.0).astype(np.float32)[:, None]
    y = digits.target.astype(np.int64)
    return tuple(train_test_split(X, y, test_size=0.3, random_state=0, stratify=y))


def trained_digits_cnn(X_train: np.ndarray, y_train: np.ndarray, epochs: int, seed: int = 0) -> nn.Module:
    """The CNN of ``examples/digits_cnn.py`` trained ``epochs`` passes on the digits (seeded), in eval mode."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "examples"))
    try:
        from digits_cnn import DigitsCNN, train
    finally:
        sys.path.pop(0)
    torch.manual_seed(seed)
    model = DigitsCNN()
    train(model, X_train, y_train, epochs)
    return model

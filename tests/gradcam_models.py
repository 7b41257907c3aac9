"""Generated images whose class is a pattern at a random known place, and a small CNN that learns them.

In a module of its own so that a model pickled by ``mlflow.pytorch`` can be loaded back.
"""

from __future__ import annotations

import sys
from collections import OrderedDict
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


def peaks_inside(maps: np.ndarray, corners: np.ndarray, box: int = PATTERN) -> np.ndarray:
    """Whether each map's maximum (n, H, W) lies in the ``box``-pixel square whose top-left corner is given (n, 2)."""
    rows, columns = np.unravel_index(maps.reshape(len(maps), -1).argmax(axis=1), maps.shape[1:])
    return (
        (rows >= corners[:, 0])
        & (rows < corners[:, 0] + box)
        & (columns >= corners[:, 1])
        & (columns < corners[:, 1] + box)
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


class EncoderBlock(nn.Module):
    """torchvision's ViT encoder block: ln_1, self_attention, dropout, ln_2, mlp (pre-norm, residuals)."""

    def __init__(self, hidden: int, heads: int, mlp_dim: int):
        super().__init__()
        self.ln_1 = nn.LayerNorm(hidden, eps=1e-6)
        self.self_attention = nn.MultiheadAttention(hidden, heads, batch_first=True)
        self.dropout = nn.Dropout(0.0)
        self.ln_2 = nn.LayerNorm(hidden, eps=1e-6)
        self.mlp = nn.Sequential(nn.Linear(hidden, mlp_dim), nn.GELU(), nn.Linear(mlp_dim, hidden))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.ln_1(x)
        y, _ = self.self_attention(y, y, y, need_weights=False)
        x = x + self.dropout(y)
        return x + self.mlp(self.ln_2(x))


class Encoder(nn.Module):
    """torchvision's ViT encoder: position embedding, ``layers.encoder_layer_<i>``, final ``ln``."""

    def __init__(self, n_tokens: int, n_layers: int, hidden: int, heads: int, mlp_dim: int):
        super().__init__()
        self.pos_embedding = nn.Parameter(torch.empty(1, n_tokens, hidden).normal_(std=0.02))
        self.dropout = nn.Dropout(0.0)
        blocks = {f"encoder_layer_{i}": EncoderBlock(hidden, heads, mlp_dim) for i in range(n_layers)}
        self.layers = nn.Sequential(OrderedDict(blocks))
        self.ln = nn.LayerNorm(hidden, eps=1e-6)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.ln(self.layers(self.dropout(x + self.pos_embedding)))


class VisionTransformer(nn.Module):
    """A ``torchvision.models.vit_b_16``-shaped classifier, small: the same module names and forward pass.

    ``conv_proj`` cuts the image into ``patch`` x ``patch`` patches, a class token goes first, the
    encoder's blocks follow, and ``heads.head`` reads the class token.
    """

    def __init__(
        self,
        image_size: int = 224,
        patch: int = 16,
        n_layers: int = 2,
        hidden: int = 32,
        heads: int = 2,
        mlp_dim: int = 64,
        n_classes: int = 3,
        channels: int = 3,
    ):
        super().__init__()
        self.patch = patch
        self.conv_proj = nn.Conv2d(channels, hidden, kernel_size=patch, stride=patch)
        self.class_token = nn.Parameter(torch.zeros(1, 1, hidden))
        self.encoder = Encoder((image_size // patch) ** 2 + 1, n_layers, hidden, heads, mlp_dim)
        self.heads = nn.Sequential(OrderedDict(head=nn.Linear(hidden, n_classes)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv_proj(x).flatten(2).transpose(1, 2)  # (n, patches, hidden), row by row
        x = torch.cat([self.class_token.expand(len(x), -1, -1), x], dim=1)
        return self.heads(self.encoder(x)[:, 0])


class Attention(nn.Module):
    """timm's ViT attention: one qkv projection, scaled dot-product attention, an output projection."""

    def __init__(self, hidden: int, heads: int):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(hidden, 3 * hidden)
        self.proj = nn.Linear(hidden, hidden)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, tokens, hidden = x.shape
        q, k, v = self.qkv(x).reshape(n, tokens, 3, self.heads, -1).permute(2, 0, 3, 1, 4)
        x = nn.functional.scaled_dot_product_attention(q, k, v)
        return self.proj(x.transpose(1, 2).reshape(n, tokens, hidden))


class Block(nn.Module):
    """timm's ViT block: norm1, attn, norm2, mlp."""

    def __init__(self, hidden: int, heads: int, mlp_dim: int):
        super().__init__()
        self.norm1, self.attn = nn.LayerNorm(hidden), Attention(hidden, heads)
        self.norm2 = nn.LayerNorm(hidden)
        self.mlp = nn.Sequential(nn.Linear(hidden, mlp_dim), nn.GELU(), nn.Linear(mlp_dim, hidden))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class DistilledViT(nn.Module):
    """A timm-shaped DeiT: ``patch_embed.proj``, class and distillation tokens, ``blocks[i].norm1``, two heads."""

    def __init__(self, image_size: int = 64, patch: int = 16, n_layers: int = 2, hidden: int = 32, n_classes: int = 3):
        super().__init__()
        self.patch_embed = nn.Module()
        self.patch_embed.proj = nn.Conv2d(3, hidden, kernel_size=patch, stride=patch)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, hidden))
        self.dist_token = nn.Parameter(torch.zeros(1, 1, hidden))
        self.pos_embed = nn.Parameter(torch.empty(1, (image_size // patch) ** 2 + 2, hidden).normal_(std=0.02))
        self.blocks = nn.Sequential(*(Block(hidden, 2, 2 * hidden) for _ in range(n_layers)))
        self.norm = nn.LayerNorm(hidden)
        self.head, self.head_dist = nn.Linear(hidden, n_classes), nn.Linear(hidden, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.patch_embed.proj(x).flatten(2).transpose(1, 2)
        prefix = torch.cat([self.cls_token, self.dist_token], dim=1).expand(len(x), -1, -1)
        x = self.norm(self.blocks(torch.cat([prefix, x], dim=1) + self.pos_embed))
        return (self.head(x[:, 0]) + self.head_dist(x[:, 1])) / 2


class WindowAttention(nn.Module):
    """Attention over a channels-last grid (n, rows, columns, channels), as a Swin block's (one window here)."""

    def __init__(self, hidden: int):
        super().__init__()
        self.attention = Attention(hidden, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.attention(x.flatten(1, 2)).reshape(x.shape)


class SwinBlock(nn.Module):
    """torchvision's Swin block: norm1, attn, norm2, mlp, on channels-last grids."""

    def __init__(self, hidden: int):
        super().__init__()
        self.norm1, self.attn = nn.LayerNorm(hidden), WindowAttention(hidden)
        self.norm2 = nn.LayerNorm(hidden)
        self.mlp = nn.Sequential(nn.Linear(hidden, 2 * hidden), nn.GELU(), nn.Linear(2 * hidden, hidden))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class SwinLike(nn.Module):
    """A Swin-shaped classifier: patch embedding, channels-last blocks without a class token, average pooling."""

    def __init__(self, patch: int = 8, hidden: int = 32, n_classes: int = 3):
        super().__init__()
        self.patch_embed = nn.Conv2d(3, hidden, kernel_size=patch, stride=patch)
        self.features = nn.Sequential(SwinBlock(hidden), SwinBlock(hidden))
        self.norm = nn.LayerNorm(hidden)
        self.head = nn.Linear(hidden, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.features(self.patch_embed(x).permute(0, 2, 3, 1))
        return self.head(self.norm(x).mean(dim=(1, 2)))


def square_images(n: int, seed: int, size: int = 64, patch: int = 16) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``n`` noisy RGB images (n, 3, size, size) holding one bright patch-sized square: its colour is the class.

    Returns the images, their class (the channel the square lights: 0 red, 1 green, 2 blue) and the
    square's top-left corner, on the patch grid.
    """
    rng = np.random.RandomState(seed)
    images = rng.normal(0, 0.1, (n, 3, size, size)).astype(np.float32)
    labels = rng.randint(0, 3, n)
    corners = rng.randint(0, size // patch, (n, 2)) * patch
    for i, (row, column) in enumerate(corners):
        images[i, labels[i], row : row + patch, column : column + patch] += 1.5
    return images, labels.astype(np.int64), corners


def trained_square_vit(n_train: int = 600, epochs: int = 8, size: int = 64, seed: int = 0) -> VisionTransformer:
    """A small ``VisionTransformer`` (patch 16) trained with Adam on :func:`square_images` (seeded), in eval mode."""
    torch.manual_seed(seed)
    images, labels, _ = square_images(n_train, seed, size)
    model = VisionTransformer(image_size=size, n_layers=2, hidden=32, heads=2, mlp_dim=64)
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    X, y = torch.from_numpy(images), torch.from_numpy(labels)
    for _ in range(epochs):
        for batch in torch.randperm(len(X)).split(32):
            optimizer.zero_grad()
            nn.functional.cross_entropy(model(X[batch]), y[batch]).backward()
            optimizer.step()
    return model.eval()


class BasicBlock(nn.Module):
    """torchvision's ResNet basic block: two 3x3 convolutions with batch norm, a projected shortcut when needed."""

    def __init__(self, inputs: int, outputs: int, stride: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(inputs, outputs, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(outputs)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(outputs, outputs, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(outputs)
        self.downsample = None
        if stride != 1 or inputs != outputs:
            self.downsample = nn.Sequential(nn.Conv2d(inputs, outputs, 1, stride, bias=False), nn.BatchNorm2d(outputs))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = x if self.downsample is None else self.downsample(x)
        return self.relu(self.bn2(self.conv2(self.relu(self.bn1(self.conv1(x))))) + shortcut)


class ResNet18(nn.Module):
    """A ``torchvision.models.resnet18``-shaped classifier (the same layers and names), for reference timings."""

    def __init__(self, n_classes: int = 1000):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
        self.bn1, self.relu, self.maxpool = nn.BatchNorm2d(64), nn.ReLU(inplace=True), nn.MaxPool2d(3, 2, 1)
        widths = (64, 128, 256, 512)
        for i, width in enumerate(widths):
            inputs = widths[max(i - 1, 0)]
            stage = nn.Sequential(BasicBlock(inputs, width, 1 if i == 0 else 2), BasicBlock(width, width))
            self.add_module(f"layer{i + 1}", stage)
        self.avgpool, self.fc = nn.AdaptiveAvgPool2d(1), nn.Linear(512, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(self.avgpool(x).flatten(1))

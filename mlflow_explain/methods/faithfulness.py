"""How faithful a heatmap is: the probability drop when its most highlighted pixels are removed (no MLflow).

The deletion test of Petsiuk et al. (RISE, 2018) at one fraction: replace the top ``fraction``
of the pixels by a heatmap with a blurred copy of the image (or zeros), and compare the drop of
the predicted class's probability with the drop for a random set of pixels of the same size.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

import torch
import torch.nn.functional as F

Fill = Literal["blur", "zero"]


def deletion_drops(
    predict_proba: Callable[[torch.Tensor], torch.Tensor],
    images: torch.Tensor,
    heatmaps: torch.Tensor,
    predicted: torch.Tensor,
    fraction: float,
    fill: Fill,
    generator: torch.Generator,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Drop of the predicted class's probability when the top or a random ``fraction`` of pixels is removed.

    Parameters
    ----------
    predict_proba : callable
        Maps a batch of images (n, C, H, W) to class probabilities (n, n_classes).
    images : Tensor of shape (n, C, H, W)
        The images, on the model's device.
    heatmaps : Tensor of shape (n, H, W)
        One heatmap per image at the image's resolution; higher means more important.
    predicted : Tensor of shape (n,)
        The predicted class of each image.
    fraction : float
        Share of the pixels removed, in (0, 1).
    fill : {"blur", "zero"}
        What removed pixels become: the pixel of a Gaussian-blurred copy of the image, or 0.
    generator : torch.Generator
        Seeded source of the random pixel sets (on the CPU).

    Returns
    -------
    deletion, random : Tensor of shape (n,)
        Original minus perturbed probability of the predicted class, for the most highlighted
        pixels and for random pixels.
    """
    n, _, height, width = images.shape
    k = max(1, round(fraction * height * width))
    rows = torch.arange(n, device=images.device)
    original = predict_proba(images)[rows, predicted]
    replacement = blurred(images) if fill == "blur" else torch.zeros_like(images)
    top = heatmaps.reshape(n, -1).topk(k, dim=1).indices
    random = torch.rand(n, height * width, generator=generator).argsort(dim=1)[:, :k].to(images.device)
    drops = []
    for pixels in (top, random):
        mask = torch.zeros(n, height * width, dtype=torch.bool, device=images.device)
        mask[rows.unsqueeze(1), pixels] = True
        perturbed = torch.where(mask.reshape(n, 1, height, width), replacement, images)
        drops.append(original - predict_proba(perturbed)[rows, predicted])
    return drops[0], drops[1]


def blurred(images: torch.Tensor) -> torch.Tensor:
    """Each channel blurred with a Gaussian of sigma = max(1, side / 16) pixels (reflected borders)."""
    sigma = max(1.0, max(images.shape[-2:]) / 16)
    radius = min(int(3 * sigma), min(images.shape[-2:]) - 1)
    offsets = torch.arange(-radius, radius + 1, dtype=images.dtype, device=images.device)
    kernel = torch.exp(-(offsets**2) / (2 * sigma**2))
    kernel = kernel / kernel.sum()
    channels = images.shape[1]
    flat = images.reshape(-1, 1, *images.shape[-2:])
    flat = F.conv2d(F.pad(flat, (radius, radius, 0, 0), mode="reflect"), kernel.reshape(1, 1, 1, -1))
    flat = F.conv2d(F.pad(flat, (0, 0, radius, radius), mode="reflect"), kernel.reshape(1, 1, -1, 1))
    return flat.reshape(-1, channels, *images.shape[-2:])

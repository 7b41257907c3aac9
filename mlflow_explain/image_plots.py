"""Matplotlib figures of Grad-CAM results: grids of images with their heatmaps, and mean heatmaps (no MLflow)."""

from __future__ import annotations

import dataclasses
import math

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from .keys import key_parts  # noqa: E402
from .results import GradcamResult  # noqa: E402

_CMAP = "jet"
_HEAT_LABEL = "Grad-CAM (1 = the image's maximum)"


@dataclasses.dataclass
class _Panel:
    """One square of a grid: an image, optionally overlaid with a heatmap, and its title."""

    image: np.ndarray
    heatmap: np.ndarray | None
    title: str


def gradcam_figures(result: GradcamResult) -> dict[str, Figure]:
    """Every Grad-CAM figure, keyed by its path under the artifact folder."""
    classes = key_parts(result.class_names)
    figures = {}
    groups = result.labels if result.labels is not None else result.predicted
    for k, name in enumerate(result.class_names):
        if np.any(groups[result.shown] == k):
            figures[f"gradcam/class_{classes[name]}.png"] = class_grid(result, k)
    if result.misclassified[result.shown].any():
        figures["gradcam/misclassified.png"] = misclassified_grid(result)
    figures["gradcam/mean_heatmaps.png"] = mean_heatmaps(result)
    return figures


def class_grid(result: GradcamResult, k: int, per_row: int = 4) -> Figure:
    """The shown images of class ``k`` (true class, or predicted without labels): image, then heatmap overlay."""
    groups = result.labels if result.labels is not None else result.predicted
    entries = []
    for i, row in enumerate(result.shown):
        if groups[row] == k:
            image = result.shown_images[i]
            entries.append([_Panel(image, None, _caption(result, int(row))),
                            _Panel(image, result.shown_heatmaps_predicted[i], "Grad-CAM, predicted class")])
    kind = "true" if result.labels is not None else "predicted"
    return _grid(entries, per_row, f"Class '{result.class_names[k]}' ({kind}): images and Grad-CAM of the predicted "
                                   f"class (layer {result.target_layer})")


def misclassified_grid(result: GradcamResult, per_row: int = 3) -> Figure:
    """Every shown misclassified image, its heatmap for the predicted class and for the true class."""
    entries = []
    for i, row in enumerate(result.shown):
        if result.misclassified[row]:
            image = result.shown_images[i]
            true_name = result.class_names[int(result.labels[row])]
            entries.append([
                _Panel(image, None, _caption(result, int(row))),
                _Panel(image, result.shown_heatmaps_predicted[i], f"for '{result.class_names[result.predicted[row]]}'"
                                                                  " (predicted)"),
                _Panel(image, result.shown_heatmaps_true[i], f"for '{true_name}' (true)"),
            ])
    return _grid(entries, per_row, f"Misclassified images: Grad-CAM of the predicted and of the true class "
                                   f"(layer {result.target_layer})")


def mean_heatmaps(result: GradcamResult, per_row: int = 5) -> Figure:
    """The mean scaled heatmap of each class over its explained images."""
    n = len(result.class_names)
    columns = min(n, per_row)
    rows = math.ceil(n / columns)
    figure = Figure(figsize=(2.3 * columns + 1, 2.4 * rows + 0.6))
    axes = np.atleast_1d(figure.subplots(rows, columns, squeeze=False).ravel())
    image = None
    kind = "true" if result.labels is not None else "predicted"
    for k, name in enumerate(result.class_names):
        axes[k].set_title(f"'{name}' ({result.class_counts[k]} images)", fontsize="small")
        if result.class_counts[k]:
            image = axes[k].imshow(result.mean_heatmaps[k], cmap=_CMAP, vmin=0, vmax=1)
    for ax in axes:
        ax.set_xticks([])
        ax.set_yticks([])
    if image is not None:
        figure.colorbar(image, ax=list(axes), label=f"mean {_HEAT_LABEL}", shrink=0.8)
    figure.suptitle(f"Mean Grad-CAM per class\n(images of each {kind} class, heatmap of that class)", fontsize="medium")
    return figure


def _caption(result: GradcamResult, row: int) -> str:
    predicted = int(result.predicted[row])
    probability = result.probabilities[row, predicted]
    true = "" if result.labels is None else f"true '{result.class_names[int(result.labels[row])]}'\n"
    return f"#{result.positions[row]} {true}pred '{result.class_names[predicted]}' (p={probability:.2f})"


def _grid(entries: list[list[_Panel]], per_row: int, title: str) -> Figure:
    """Entries of panels side by side, ``per_row`` entries per line, one shared heatmap colour bar."""
    width = len(entries[0])
    columns = min(len(entries), per_row) * width
    rows = math.ceil(len(entries) / per_row)
    figure = Figure(figsize=(1.9 * columns + 1, 2.3 * rows + 0.7))
    axes = figure.subplots(rows, columns, squeeze=False)
    overlay = None
    for ax in axes.ravel():
        ax.set_axis_off()
    for index, entry in enumerate(entries):
        for j, panel in enumerate(entry):
            ax = axes[index // per_row, (index % per_row) * width + j]
            ax.imshow(_displayable(panel.image), cmap="gray" if panel.image.shape[0] != 3 else None)
            if panel.heatmap is not None:
                overlay = ax.imshow(panel.heatmap, cmap=_CMAP, alpha=0.5, vmin=0, vmax=1)
            # A plain text above the axes: set_title's automatic placement costs much time on many axes.
            ax.text(0.5, 1.02, panel.title, transform=ax.transAxes, ha="center", va="bottom", fontsize="x-small")
    if overlay is not None:
        figure.colorbar(overlay, ax=axes.ravel().tolist(), label=_HEAT_LABEL, shrink=0.8)
    figure.suptitle(title, fontsize="medium")
    return figure


def _displayable(image: np.ndarray) -> np.ndarray:
    """An image (C, H, W) as matplotlib shows it: RGB (H, W, 3) or grey (H, W), scaled to [0, 1]."""
    shown = image.transpose(1, 2, 0) if image.shape[0] == 3 else image.mean(axis=0)
    low, high = float(shown.min()), float(shown.max())
    return (shown - low) / (high - low) if high > low else np.zeros_like(shown)

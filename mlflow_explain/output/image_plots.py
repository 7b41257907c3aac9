"""Image attribution figures as SVG: grids of images with their heatmaps, and mean heatmaps per class (no MLflow).

One set per method (Grad-CAM, Integrated Gradients), under the method's folder and named by its title.

Each panel is a small PNG inside the SVG, shown pixelated as the model saw it; captions, titles
and the colour bar are SVG text, so a grid of dozens of images costs milliseconds.
"""

from __future__ import annotations

import base64
import dataclasses
import io
import math

import numpy as np
from matplotlib import colormaps
from PIL import Image

from ..keys import file_parts
from ..results import ImageAttributionResult
from .svg import ColourBar, document, text_element, title_elements, title_height, title_lines
from .text import text_width

_CMAP = "jet"
_CAPTION_SIZE = 10.0
_GAP = 8.0
_PAD = 8.0


@dataclasses.dataclass
class _Panel:
    """One square of a grid: an RGB picture (H, W, 3) in [0, 1] and its caption (lines split on newlines)."""

    rgb: np.ndarray
    caption: str


class ImageGrid:
    """Entries of panels in rows (``per_row`` entries a row), a title above, a heatmap colour bar beside."""

    def __init__(self, title: str, per_row: int, colour_bar: ColourBar | None) -> None:
        self.title = title
        self.per_row = per_row
        self.colour_bar = colour_bar
        self.entries: list[list[_Panel]] = []

    def to_svg(self) -> str:
        """The grid as a standalone SVG document."""
        panels_per_entry = max(len(entry) for entry in self.entries)
        side = float(np.clip(max(panel.rgb.shape[0] for entry in self.entries for panel in entry), 96, 160))
        lines = max(panel.caption.count("\n") + 1 for entry in self.entries for panel in entry)
        if self.colour_bar is not None and len(self.entries) <= self.per_row:  # one row: as tall as the bar's label
            side = float(np.clip(self.colour_bar.min_height() - lines * _CAPTION_SIZE * 1.25, side, 160))
        longest = max(
            text_width(line, _CAPTION_SIZE)
            for entry in self.entries
            for panel in entry
            for line in panel.caption.split("\n")
        )
        cell_width, cell_height = max(side, longest) + _GAP, lines * _CAPTION_SIZE * 1.25 + side + _GAP
        columns = min(len(self.entries), self.per_row)
        entry_width = panels_per_entry * cell_width + 2 * _GAP
        grid_width = columns * entry_width
        rows = math.ceil(len(self.entries) / self.per_row)
        width = _PAD + grid_width + (self.colour_bar.width() + _GAP if self.colour_bar else 0) + _PAD
        titles = title_lines(self.title, width)
        top = title_height(titles) - _PAD + _GAP
        bar_height = max(min(rows * cell_height - _GAP, 320), self.colour_bar.min_height() if self.colour_bar else 0)
        height = top + max(rows * cell_height, bar_height) + _PAD
        parts = title_elements(titles, width / 2, width)
        for index, entry in enumerate(self.entries):
            x0 = _PAD + (index % self.per_row) * entry_width
            y0 = top + (index // self.per_row) * cell_height
            for j, panel in enumerate(entry):
                parts += _panel(panel, x0 + j * cell_width, y0, cell_width - _GAP, side, lines)
        if self.colour_bar is not None:
            parts += self.colour_bar.render(_PAD + grid_width + _GAP, top, bar_height)
        return document(width, height, parts)


def image_figures(result: ImageAttributionResult) -> dict[str, ImageGrid]:
    """Every figure of one method's result, keyed by its path under the artifact folder (``<method>/...``)."""
    classes = file_parts(result.class_names)
    figures = {}
    groups = result.labels if result.labels is not None else result.predicted
    for k, name in enumerate(result.class_names):
        if np.any(groups[result.shown] == k):
            figures[f"{result.method}/class_{classes[name]}.svg"] = class_grid(result, k)
    if result.misclassified[result.shown].any():
        figures[f"{result.method}/misclassified.svg"] = misclassified_grid(result)
    figures[f"{result.method}/mean_heatmaps.svg"] = mean_heatmaps(result)
    return figures


def class_grid(result: ImageAttributionResult, k: int, per_row: int = 4) -> ImageGrid:
    """The shown images of class ``k`` (true class, or predicted without labels): image, then heatmap overlay."""
    groups = result.labels if result.labels is not None else result.predicted
    entries = []
    for i, row in enumerate(result.shown):
        if groups[row] == k:
            image = result.shown_images[i]
            entries.append(
                [
                    _Panel(_picture(image, None), _caption(result, int(row))),
                    _Panel(_picture(image, result.shown_heatmaps_predicted[i]), f"{result.title}, predicted class"),
                ]
            )
    kind = "true" if result.labels is not None else "predicted"
    return _grid(
        result,
        entries,
        per_row,
        f"Class '{result.class_names[k]}' ({kind}): images and {result.title} of the predicted class\n"
        f"({result.setting})",
    )


def misclassified_grid(result: ImageAttributionResult, per_row: int = 3) -> ImageGrid:
    """Every shown misclassified image, its heatmap for the predicted class and for the true class."""
    entries = []
    for i, row in enumerate(result.shown):
        if result.misclassified[row]:
            image = result.shown_images[i]
            true_name = result.class_names[int(result.labels[row])]
            entries.append(
                [
                    _Panel(_picture(image, None), _caption(result, int(row))),
                    _Panel(
                        _picture(image, result.shown_heatmaps_predicted[i]),
                        f"for '{result.class_names[result.predicted[row]]}' (predicted)",
                    ),
                    _Panel(_picture(image, result.shown_heatmaps_true[i]), f"for '{true_name}' (true)"),
                ]
            )
    return _grid(
        result,
        entries,
        per_row,
        f"Misclassified images: {result.title} of the predicted and of the true class\n({result.setting})",
    )


def mean_heatmaps(result: ImageAttributionResult, per_row: int = 5) -> ImageGrid:
    """The mean scaled heatmap of each class over its explained images."""
    kind = "true" if result.labels is not None else "predicted"
    grid = ImageGrid(
        f"Mean {result.title} per class\n(images of each {kind} class, heatmap of that class)",
        per_row,
        ColourBar(_CMAP, 0, 1, f"mean {_heat_label(result)}"),
    )
    for k, name in enumerate(result.class_names):
        heat = (
            _heat_rgb(result.mean_heatmaps[k])
            if result.class_counts[k]
            else np.ones((*result.mean_heatmaps[k].shape, 3))
        )
        grid.entries.append([_Panel(heat, f"'{name}' ({result.class_counts[k]} images)")])
    return grid


def _caption(result: ImageAttributionResult, row: int) -> str:
    predicted = int(result.predicted[row])
    probability = result.probabilities[row, predicted]
    true = "" if result.labels is None else f"true '{result.class_names[int(result.labels[row])]}'\n"
    return f"#{result.positions[row]} {true}pred '{result.class_names[predicted]}' (p={probability:.2f})"


def _heat_label(result: ImageAttributionResult) -> str:
    return f"{result.title} (1 = the image's peak)"


def _grid(result: ImageAttributionResult, entries: list[list[_Panel]], per_row: int, title: str) -> ImageGrid:
    """Entries of panels side by side, ``per_row`` entries per line, one shared heatmap colour bar."""
    grid = ImageGrid(title, per_row, ColourBar(_CMAP, 0, 1, _heat_label(result)))
    grid.entries = entries
    return grid


def _picture(image: np.ndarray, heatmap: np.ndarray | None) -> np.ndarray:
    """An image (C, H, W) as RGB in [0, 1], blended half and half with the heatmap's colours when given."""
    rgb = _displayable(image)
    return rgb if heatmap is None else 0.5 * rgb + 0.5 * _heat_rgb(heatmap)


def _heat_rgb(heatmap: np.ndarray) -> np.ndarray:
    """A heatmap in [0, 1] as RGB on the heatmap colour map."""
    return colormaps[_CMAP](np.clip(np.nan_to_num(heatmap), 0, 1))[..., :3]


def _displayable(image: np.ndarray) -> np.ndarray:
    """An image (C, H, W) as RGB (H, W, 3) scaled to [0, 1]; one channel becomes grey."""
    shown = image.transpose(1, 2, 0) if image.shape[0] == 3 else np.repeat(image.mean(axis=0)[..., None], 3, axis=2)
    low, high = float(shown.min()), float(shown.max())
    return (shown - low) / (high - low) if high > low else np.zeros_like(shown, dtype=float)


def _panel(panel: _Panel, x: float, y: float, width: float, side: float, lines: int) -> list[str]:
    """A panel's caption lines and its picture as an embedded PNG, centred in a cell ``width`` wide."""
    parts = [
        text_element(
            x + width / 2,
            y + (i + 1) * _CAPTION_SIZE * 1.25 - 2,
            line,
            "middle",
            size=_CAPTION_SIZE,
            css_class="caption",
        )
        for i, line in enumerate(panel.caption.split("\n"))
    ]
    buffer = io.BytesIO()
    Image.fromarray(np.round(np.clip(panel.rgb, 0, 1) * 255).astype(np.uint8)).save(buffer, format="PNG")
    encoded = base64.b64encode(buffer.getvalue()).decode("ascii")
    parts.append(
        f"<image class='panel' x='{x + (width - side) / 2:.1f}' y='{y + lines * _CAPTION_SIZE * 1.25:.1f}' "
        f"width='{side:.0f}' height='{side:.0f}' style='image-rendering:pixelated' "
        f"href='data:image/png;base64,{encoded}'/>"
    )
    return parts

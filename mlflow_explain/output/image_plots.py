"""Image attribution figures as SVG: grids of images with their heatmaps, and mean heatmaps per class (no MLflow).

One set per method (Grad-CAM, Integrated Gradients), under the method's folder and named by its title.

Laid out for the report: a figure is at most :data:`REPORT_WIDTH` wide, so it is shown at its own
size and its captions stay :data:`CAPTION_SIZE` pixels; as many entries share a row as fit, and the
figure is as tall as its rows. Each panel is a small PNG inside the SVG, shown pixelated as the
model saw it; a heatmap is drawn over the image in grey, partly transparent so the image shows
through (Grad-CAM on the perceptual ``inferno`` map; a signed map such as Integrated Gradients red
for the class and blue against it, transparent at 0, as shap's image plot draws it). The colour bar
is a panel's height, beside the first row. Captions, titles and ticks are SVG text, so a grid of
dozens of images costs milliseconds.
"""

from __future__ import annotations

import base64
import dataclasses
import io
import math

import numpy as np
from matplotlib import colormaps
from PIL import Image
from shap.plots.colors import red_transparent_blue

from ..keys import file_parts
from ..results import ImageAttributionResult
from .svg import document, text_element, title_elements, title_height, title_lines
from .text import LINE_HEIGHT, shorten, text_width

REPORT_WIDTH = 960.0  # the report's content width (report.css): a figure no wider is shown at its own size
CAPTION_SIZE = 11.0
_CAPTION_LINE = CAPTION_SIZE * LINE_HEIGHT
_PANEL_GAP = 6.0  # between the panels of one entry
_ENTRY_GAP = 18.0  # between entries
_ROW_GAP = 12.0
_PAD = 8.0
_SIDE = (72.0, 128.0)  # a panel's side in pixels: the smallest a grid shrinks to, and the largest
_BAR_WIDTH = 14.0
_HEATMAP = "inferno"  # perceptual: brightness rises with the value
_GREY = (0.15, 0.85)  # the image's grey levels under a heatmap, off black and white so both colour ends show
_OPACITY = 0.6  # a heatmap's opacity: one for every value, so its colour alone tells the value (a signed map's at +-1)


@dataclasses.dataclass
class _Panel:
    """One square of a grid: an RGB picture (H, W, 3) in [0, 1] and its caption (lines split on newlines)."""

    rgb: np.ndarray
    caption: str


@dataclasses.dataclass
class _Layout:
    """Where a grid's parts go: panel side, cell width, entries per row, caption lines, colour bar, title height."""

    side: float
    cell: float
    panels: int
    columns: int
    rows: int
    lines: int
    bar_width: float
    top: float = 0.0

    @property
    def entry_width(self) -> float:
        """From an entry's left edge to the next entry's."""
        return self.panels * self.cell + (self.panels - 1) * _PANEL_GAP + _ENTRY_GAP

    @property
    def width(self) -> float:
        return 2 * _PAD + self.columns * self.entry_width - _ENTRY_GAP + self.bar_width

    @property
    def row_height(self) -> float:
        return self.lines * _CAPTION_LINE + self.side + _ROW_GAP

    @property
    def height(self) -> float:
        return self.top + self.rows * self.row_height - _ROW_GAP + _PAD


class ImageGrid:
    """Entries of panels in rows (at most ``per_row`` entries a row, fewer when they do not fit), a colour bar beside.

    Parameters
    ----------
    title : str
        The figure's title (its own line breaks kept; wrapped to the width).
    per_row : int
        The most entries in one row.
    signed : bool
        The heatmaps are signed (a red-blue colour bar from -1 to 1), else non-negative (0 to 1).
    """

    def __init__(self, title: str, per_row: int, signed: bool = False) -> None:
        self.title = title
        self.per_row = per_row
        self.signed = signed
        self.entries: list[list[_Panel]] = []

    def layout(self) -> _Layout:
        """The largest panels (up to 128 px) that fit ``min(entries, per_row)`` entries a row in :data:`REPORT_WIDTH`.

        When even the smallest panels do not fit that many, a row holds fewer entries.
        """
        panels = max(len(entry) for entry in self.entries)
        captions = [line for entry in self.entries for panel in entry for line in panel.caption.split("\n")]
        caption_width = max(text_width(line, CAPTION_SIZE) for line in captions)
        lines = max(panel.caption.count("\n") + 1 for entry in self.entries for panel in entry)
        room = REPORT_WIDTH - 2 * _PAD - self._bar_width()
        columns = min(len(self.entries), self.per_row)
        wanted = max(_SIDE[0], min(caption_width, _SIDE[1]))
        while columns > 1 and _cell_room(room, columns, panels) < wanted:
            columns -= 1
        cell_room = _cell_room(room, columns, panels)
        side = min(cell_room, _SIDE[1])
        cell = min(max(side, caption_width), cell_room)
        rows = math.ceil(len(self.entries) / columns)
        layout = _Layout(side, cell, panels, columns, rows, lines, self._bar_width())
        layout.top = title_height(title_lines(self.title, layout.width)) - _PAD + _ROW_GAP
        return layout

    def to_svg(self) -> str:
        """The grid as a standalone SVG document."""
        layout = self.layout()
        parts = title_elements(title_lines(self.title, layout.width), layout.width / 2, layout.width)
        for index, entry in enumerate(self.entries):
            x0 = _PAD + (index % layout.columns) * layout.entry_width
            y0 = layout.top + (index // layout.columns) * layout.row_height
            for j, panel in enumerate(entry):
                parts += _panel(panel, x0 + j * (layout.cell + _PANEL_GAP), y0, layout)
        bar_x = _PAD + layout.columns * layout.entry_width - _ENTRY_GAP / 2
        parts += self._render_bar(bar_x, layout.top + layout.lines * _CAPTION_LINE, layout.side)
        return document(layout.width, layout.height, parts)

    def _ticks(self) -> list[tuple[float, str]]:
        """The colour bar's ticks: (value, text), top first."""
        if self.signed:
            return [(1.0, "+max"), (0.0, "0"), (-1.0, "\u2212max")]
        return [(1.0, "peak"), (0.0, "0")]

    def _bar_width(self) -> float:
        """From the gap before the bar to the right of its widest tick."""
        return _ENTRY_GAP / 2 + _BAR_WIDTH + 4 + max(text_width(text, CAPTION_SIZE) for _, text in self._ticks())

    def _render_bar(self, x: float, top: float, height: float) -> list[str]:
        """The colour bar, ``height`` tall: the heatmap's colours over a mid-grey pixel, and its ticks."""
        values = np.linspace(1, -1 if self.signed else 0, 64)[:, None]
        strip = heat_over(np.full(values.shape, 0.5), values, self.signed)
        low = -1.0 if self.signed else 0.0
        parts = [_png_image(strip, x, top, _BAR_WIDTH, height, "colour-bar", smooth=True)]
        for value, text in self._ticks():
            y = top + (1 - (value - low) / (1 - low)) * height
            y = min(max(y + CAPTION_SIZE * 0.35, top + CAPTION_SIZE * 0.8), top + height)
            parts.append(text_element(x + _BAR_WIDTH + 4, y, text, "start", size=CAPTION_SIZE, css_class="colour-tick"))
        return parts


def _cell_room(room: float, columns: int, panels: int) -> float:
    """The width of one panel's cell when ``columns`` entries of ``panels`` panels share ``room`` pixels."""
    return ((room + _ENTRY_GAP) / columns - _ENTRY_GAP - (panels - 1) * _PANEL_GAP) / panels


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
            predicted = result.class_names[int(result.predicted[row])]
            entries.append(
                [
                    _Panel(_picture(image, None, result.signed_maps), _caption(result, int(row))),
                    _Panel(
                        _picture(image, result.shown_heatmaps_predicted[i], result.signed_maps),
                        f"map for '{predicted}'\n(predicted)",
                    ),
                ]
            )
    kind = "true" if result.labels is not None else "predicted"
    return _grid(
        result,
        entries,
        per_row,
        f"Class '{result.class_names[k]}' ({kind}): images and {result.title} of the predicted class\n"
        f"({result.setting}; {_scale_note(result)})",
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
                    _Panel(_picture(image, None, result.signed_maps), _caption(result, int(row))),
                    _Panel(
                        _picture(image, result.shown_heatmaps_predicted[i], result.signed_maps),
                        f"map for '{result.class_names[result.predicted[row]]}'\n(predicted)",
                    ),
                    _Panel(
                        _picture(image, result.shown_heatmaps_true[i], result.signed_maps),
                        f"map for '{true_name}'\n(true)",
                    ),
                ]
            )
    return _grid(
        result,
        entries,
        per_row,
        f"Misclassified images: {result.title} of the predicted and of the true class\n"
        f"({result.setting}; {_scale_note(result)})",
    )


def mean_heatmaps(result: ImageAttributionResult, per_row: int = 5) -> ImageGrid:
    """The mean scaled heatmap of each class over its explained images (the positive part of a signed method's)."""
    kind = "true" if result.labels is not None else "predicted"
    part = "positive part of the " if result.signed_maps else ""
    grid = ImageGrid(
        f"Mean {result.title} per class\n(images of each {kind} class, {part}map of that class, "
        "each map \u00f7 its peak, then averaged)",
        per_row,
    )
    for k, name in enumerate(result.class_names):
        counts = int(result.class_counts[k])
        shape = result.mean_heatmaps[k].shape
        heat = heat_over(np.full(shape, 0.5), result.mean_heatmaps[k], False) if counts else np.ones((*shape, 3))
        grid.entries.append([_Panel(heat, f"'{name}'\n{counts} images")])
    return grid


def heat_over(grey: np.ndarray, heatmap: np.ndarray, signed: bool) -> np.ndarray:
    """RGB (H, W, 3) of a heatmap drawn over a grey image (H, W) in [0, 1], the image showing through.

    A map in [0, 1] takes the ``inferno`` colour map (its brightness rises with the value) at one
    opacity; a signed map in [-1, 1] takes shap's red (for) and blue (against), transparent at 0.
    NaN counts as 0.
    """
    base = (_GREY[0] + (_GREY[1] - _GREY[0]) * grey)[..., None]
    heat = np.nan_to_num(heatmap)
    if signed:
        rgba = red_transparent_blue((np.clip(heat, -1, 1) + 1) / 2)
        colour, opacity = rgba[..., :3], _OPACITY * rgba[..., 3:]
    else:
        colour, opacity = colormaps[_HEATMAP](np.clip(heat, 0, 1))[..., :3], _OPACITY
    return (1 - opacity) * base + opacity * colour


def _scale_note(result: ImageAttributionResult) -> str:
    if result.signed_maps:
        return "red for the class, blue against it; each map \u00f7 its largest |value|"
    return "each map \u00f7 its peak"


def _caption(result: ImageAttributionResult, row: int) -> str:
    predicted = int(result.predicted[row])
    probability = result.probabilities[row, predicted]
    true = "" if result.labels is None else f" true '{result.class_names[int(result.labels[row])]}'"
    return f"#{result.positions[row]}{true}\npred '{result.class_names[predicted]}' (p={probability:.2f})"


def _grid(result: ImageAttributionResult, entries: list[list[_Panel]], per_row: int, title: str) -> ImageGrid:
    """Entries of panels side by side, at most ``per_row`` entries per line, one shared colour bar."""
    grid = ImageGrid(title, per_row, signed=result.signed_maps)
    grid.entries = entries
    return grid


def _picture(image: np.ndarray, heatmap: np.ndarray | None, signed: bool) -> np.ndarray:
    """An image (C, H, W) as RGB in [0, 1]; with a heatmap, the heatmap over the image in grey."""
    rgb = _displayable(image)
    if heatmap is None:
        return rgb
    return heat_over(rgb @ np.array([0.2989, 0.5870, 0.1140]), heatmap, signed)  # luminance, as shap's image plot


def _displayable(image: np.ndarray) -> np.ndarray:
    """An image (C, H, W) as RGB (H, W, 3) scaled to [0, 1]; one channel becomes grey."""
    shown = image.transpose(1, 2, 0) if image.shape[0] == 3 else np.repeat(image.mean(axis=0)[..., None], 3, axis=2)
    low, high = float(shown.min()), float(shown.max())
    return (shown - low) / (high - low) if high > low else np.zeros_like(shown, dtype=float)


def _panel(panel: _Panel, x: float, y: float, layout: _Layout) -> list[str]:
    """A panel's caption lines (shortened to the cell) and its picture, centred in a cell of the layout."""
    centre = x + layout.cell / 2
    parts = [
        text_element(
            centre,
            y + (i + 1) * _CAPTION_LINE - 3,
            shorten(line, layout.cell, CAPTION_SIZE),
            "middle",
            size=CAPTION_SIZE,
            css_class="caption",
        )
        for i, line in enumerate(panel.caption.split("\n"))
    ]
    top = y + layout.lines * _CAPTION_LINE
    parts.append(_png_image(panel.rgb, centre - layout.side / 2, top, layout.side, layout.side, "panel"))
    return parts


def _png_image(
    rgb: np.ndarray, x: float, y: float, width: float, height: float, css_class: str, smooth: bool = False
) -> str:
    """An ``<image>`` of an RGB array (H, W, 3) in [0, 1] as an embedded PNG, pixelated unless ``smooth``."""
    buffer = io.BytesIO()
    Image.fromarray(np.round(np.clip(rgb, 0, 1) * 255).astype(np.uint8)).save(buffer, format="PNG")
    encoded = base64.b64encode(buffer.getvalue()).decode("ascii")
    rendering = "" if smooth else " style='image-rendering:pixelated'"
    return (
        f"<image class='{css_class}' x='{x:.1f}' y='{y:.1f}' width='{width:.0f}' height='{height:.0f}' "
        f"preserveAspectRatio='none'{rendering} href='data:image/png;base64,{encoded}'/>"
    )

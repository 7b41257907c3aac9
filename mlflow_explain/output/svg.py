"""Small SVG charts written as text: axes with ticks, bars, points, lines, colour bars and legends.

A :class:`Chart` collects marks in data coordinates and lays itself out when rendered: margins
come from the length of the labels, so no text is measured and nothing is drawn twice. The
result is a standalone SVG document that browsers (and the MLflow UI's artifact viewer) show
as an image; every text is XML-escaped, so names from the data never become markup.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from html import escape
from typing import Protocol

import numpy as np
from matplotlib import colormaps
from matplotlib.colors import Colormap
from matplotlib.ticker import MaxNLocator

from .text import FONT, FONT_SIZE, LINE_HEIGHT, shorten, text_width, wrap

_TICK = 4.0
_PAD = 8.0
_COLOUR_LEVELS = 64  # points are drawn in one path per colour level
NAN_COLOUR = "#999999"  # grey is for missing values only: no palette or colour map below holds it
PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#bcbd22", "#17becf", "#393b79")
Colours = str | Colormap  # a matplotlib colour map, or the name of one


def colours(values: np.ndarray, cmap: Colours, low: float | None = None, high: float | None = None) -> list[str]:
    """Hex colours of ``values`` on a colour map, ``low``..``high`` (default: their range); NaN is grey."""
    values = np.asarray(values, dtype=float)
    finite = np.isfinite(values)
    if low is None:
        low = float(values[finite].min()) if finite.any() else 0.0
    if high is None:
        high = float(values[finite].max()) if finite.any() else 1.0
    scaled = np.clip((values - low) / (high - low), 0, 1) if high > low else np.full(values.shape, 0.5)
    levels = np.round(np.nan_to_num(scaled) * (_COLOUR_LEVELS - 1)).astype(int)
    return np.where(finite, np.asarray(_palette(cmap), dtype=object)[levels], NAN_COLOUR).tolist()


_PALETTES: dict[str, tuple[str, ...]] = {}


def _palette(cmap: Colours) -> tuple[str, ...]:
    """``_COLOUR_LEVELS`` hex colours evenly spaced along a colour map (kept by the map's name)."""
    name = cmap if isinstance(cmap, str) else cmap.name
    if name not in _PALETTES:
        rgba = (colormaps[cmap] if isinstance(cmap, str) else cmap)(np.linspace(0, 1, _COLOUR_LEVELS))
        _PALETTES[name] = tuple(
            "#{:02x}{:02x}{:02x}".format(*(int(round(255 * c)) for c in colour[:3])) for colour in rgba
        )
    return _PALETTES[name]


def format_number(value: float, decimals: int | None = None, digits: int = 3) -> str:
    """``value`` for reading: with ``decimals`` fixed (ticks), else whole numbers whole and others to ``digits``.

    A year is 2010, not 2.01e+03; 1234.5 is 1235 and 0.012345 is 0.0123 (3 digits); only magnitudes of a
    billion and more, or below 1e-4 (without ``decimals``), take an exponent. A tick a step's rounding
    put at -5.6e-17 is "0.00" with 2 decimals: never a signed zero.
    """
    if value == 0 or not math.isfinite(value):
        return "0" if value == 0 else str(value)
    magnitude = abs(value)
    if magnitude >= 1e9 or (decimals is None and magnitude < 1e-4):
        return f"{value:.{digits - 1}e}"
    if decimals is None:
        if float(value).is_integer():
            return f"{value:.0f}"
        decimals = max(0, digits - 1 - math.floor(math.log10(magnitude)))
    text = f"{value:.{decimals}f}"
    return text[1:] if text.startswith("-") and float(text) == 0 else text


def format_fixed(value: float, decimals: int, sign: bool = False) -> str:
    """A data value to ``decimals`` decimals (with its sign when ``sign``) as tables and chart labels write it.

    Never a signed zero: 0 is "0.0000", without a sign; a value that is not 0 but rounds to it is
    written in two significant digits ("-3.2e-05"), so that it reads neither as 0 nor as "-0.0000".
    Values within float noise of 0 are 0 before they get here (``results.denoised``).
    """
    if not math.isfinite(value):
        return str(value)
    plus = "+" if sign and value > 0 else ""
    if value == 0:
        return f"{0.0:.{decimals}f}"
    text = f"{value:.{decimals}f}"
    return plus + (f"{value:.1e}" if float(text) == 0 else text)


def significant_decimals(values: Sequence[float], digits: int = 4) -> int:
    """Decimals that give the largest of ``values`` (in magnitude) ``digits`` significant digits."""
    largest = max((abs(v) for v in values if math.isfinite(v)), default=0.0)
    return max(0, digits - 1 - math.floor(math.log10(largest))) if largest > 0 else digits


def tick_decimals(values: Sequence[float]) -> int:
    """The fewest decimals that write every tick value exactly (2.5, 5, 7.5 need one)."""
    scale = max((abs(v) for v in values), default=1.0) or 1.0
    for decimals in range(7):
        if all(abs(round(v, decimals) - v) <= 1e-9 * scale for v in values):
            return decimals
    return 6


class Drawing(Protocol):
    """Anything that renders itself as a standalone SVG document (charts, image grids)."""

    def to_svg(self) -> str: ...


@dataclasses.dataclass
class Axis:
    """One axis: a label, and either a numeric range with ticks or categories at positions 0..n-1.

    ``groups`` names blocks of consecutive categories, ``(label, first, last)`` positions: each label
    is drawn once beside its block's ticks, with a bracket (the experiment of a block of runs).
    """

    label: str = ""
    categories: list[str] | None = None
    inverted: bool = False
    rotate: float = 0.0  # tick-label rotation in degrees (x axis only)
    limits: tuple[float, float] | None = None
    ranks: bool = False  # whole numbers from 1, and 1 always in the range and ticked
    groups: list[tuple[str, int, int]] = dataclasses.field(default_factory=list)

    def ticks(self, low: float, high: float) -> list[tuple[float, str]]:
        if self.categories is not None:
            return [(float(i), name) for i, name in enumerate(self.categories)]
        locator = MaxNLocator(nbins=6, integer=self.ranks)
        values = [float(v) for v in locator.tick_values(low, high) if low - 1e-12 <= v <= high + 1e-12]
        if self.ranks:
            values = [1.0] + [v for v in values if v > 1]
        decimals = tick_decimals(values)
        return [(v, format_number(v, decimals)) for v in values]

    def group_width(self) -> float:
        """Room the group labels and their brackets take beside the tick labels (y axis)."""
        return max((text_width(label) for label, _, _ in self.groups), default=-_BRACKET) + _BRACKET


_LINE = FONT_SIZE * LINE_HEIGHT  # pixels from one line of a wrapped label to the next
_TITLE_SIZE = FONT_SIZE * 1.15
_LEGEND_LINE = FONT_SIZE * 1.4
_SWATCH = 18.0  # a legend's colour swatch and the gap after it
_BRACKET = 4 + _PAD / 2  # a group's bracket and the gap to its label


@dataclasses.dataclass
class _Legend:
    """One legend section: a bold title and (label, colour) swatches, one a line."""

    entries: list[tuple[str, str]]
    title: str

    def width(self) -> float:
        return max([text_width(self.title, bold=True)] + [text_width(label) + _SWATCH for label, _ in self.entries])

    def height(self) -> float:
        return (len(self.entries) + bool(self.title)) * _LEGEND_LINE + _PAD

    def render(self, x: float, top: float) -> list[str]:
        parts, y = [], top + FONT_SIZE
        if self.title:
            parts.append(text_element(x, y, self.title, "start", weight="bold", css_class="legend-title"))
            y += _LEGEND_LINE
        for label, colour in self.entries:
            parts.append(f"<rect x='{x:.1f}' y='{y - 9:.1f}' width='12' height='10' fill='{colour}'/>")
            parts.append(text_element(x + _SWATCH, y, label, "start", css_class="legend"))
            y += _LEGEND_LINE
        return parts


def _legend_columns(legends: list[_Legend], height: float) -> list[list[_Legend]]:
    """Legend sections stacked in columns no taller than ``height`` (a taller section has a column to itself)."""
    columns: list[list[_Legend]] = []
    used = height
    for legend in legends:
        if used + legend.height() > height:
            columns.append([])
            used = 0.0
        columns[-1].append(legend)
        used += legend.height()
    return columns


@dataclasses.dataclass
class ColourBar:
    """A vertical colour scale: ``cmap`` from ``low`` (bottom) to ``high`` (top), with a label along it."""

    cmap: Colours
    low: float
    high: float
    label: str
    low_text: str = ""
    high_text: str = ""

    def __post_init__(self) -> None:
        self.low_text = self.low_text or format_number(self.low)
        self.high_text = self.high_text or format_number(self.high)

    def _tick_width(self) -> float:
        return max(text_width(self.low_text), text_width(self.high_text))

    def width(self) -> float:
        """From the bar's left edge to the right of its rotated label, and a gap."""
        return _SWATCH + self._tick_width() + _PAD + FONT_SIZE * 1.2 + _PAD

    def min_height(self) -> float:
        """The height the label along the bar needs."""
        return text_width(self.label) + 2 * _PAD

    def render(self, x: float, top: float, height: float) -> list[str]:
        """SVG elements of the bar with its top-left corner at (x, top)."""
        stops = "".join(
            f"<stop offset='{t:.2f}' stop-color='{c}'/>"
            for t, c in zip(np.linspace(0, 1, 11), colours(np.linspace(1, 0, 11), self.cmap, 0, 1), strict=True)
        )
        label_x = x + _SWATCH + self._tick_width() + _PAD + FONT_SIZE * 0.25  # glyphs reach ~0.95 em to its right
        label_y = top + height / 2
        return [
            f"<defs><linearGradient id='colour-bar' x1='0' y1='0' x2='0' y2='1'>{stops}</linearGradient></defs>",
            f"<rect class='colour-bar' x='{x:.1f}' y='{top:.1f}' width='14' height='{height:.1f}' "
            "fill='url(#colour-bar)'/>",
            text_element(x + _SWATCH, top + FONT_SIZE * 0.8, self.high_text, "start", css_class="colour-tick"),
            text_element(x + _SWATCH, top + height, self.low_text, "start", css_class="colour-tick"),
            text_element(
                label_x,
                label_y,
                self.label,
                "middle",
                css_class="colour-label",
                transform=f"rotate(90 {label_x:.1f} {label_y:.1f})",
            ),
        ]


class Chart:
    """One plot area with an x and a y axis, marks in data coordinates, legends and a colour bar beside.

    Every text is laid out to stay inside the image: titles and axis labels wrap, margins grow
    to the tick labels, legends and annotations.

    Parameters
    ----------
    title, xlabel, ylabel : str
        Texts above the plot and along the axes.
    width : float
        Width of the whole image in pixels; the plot area gets what the labels leave.
    plot_height : float
        Height of the plot area in pixels (the image adds the title, ticks and labels).
    """

    def __init__(
        self, title: str, xlabel: str = "", ylabel: str = "", *, width: float = 720, plot_height: float = 360
    ) -> None:
        self.title = title
        self.x = Axis(xlabel)
        self.y = Axis(ylabel)
        self.width = width
        self.plot_height = plot_height
        self._marks: list = []
        self._x_extent: list[float] = []
        self._y_extent: list[float] = []
        self._legends: list[_Legend] = []
        self._colour_bar: ColourBar | None = None

    # -- marks -------------------------------------------------------------------------------------
    def rect(
        self, x0: float, x1: float, y0: float, y1: float, fill: str, tooltip: str = "", css_class: str = "bar"
    ) -> None:
        """A rectangle between x0..x1 and y0..y1 (bars, heatmap cells)."""
        self._extend([x0, x1], [y0, y1])
        self._marks.append(("rect", (x0, x1, y0, y1), fill, tooltip, css_class))

    def hbars(
        self,
        positions: Sequence[float],
        starts: Sequence[float],
        ends: Sequence[float],
        fill: str | Sequence[str],
        tooltips: Sequence[str] | None = None,
        thickness: float = 0.7,
    ) -> None:
        """Horizontal bars at y ``positions`` from ``starts`` to ``ends``."""
        fills = [fill] * len(positions) if isinstance(fill, str) else list(fill)
        for i, (y, start, end) in enumerate(zip(positions, starts, ends, strict=True)):
            self.rect(
                min(start, end),
                max(start, end),
                y - thickness / 2,
                y + thickness / 2,
                fills[i],
                tooltips[i] if tooltips is not None else "",
            )

    def error_bars(self, positions: Sequence[float], lows: Sequence[float], highs: Sequence[float]) -> None:
        """Horizontal error bars with caps at y ``positions``."""
        self._extend(list(lows) + list(highs), [])
        self._marks.extend(("error", (y, lo, hi)) for y, lo, hi in zip(positions, lows, highs, strict=True))

    def points(
        self,
        x: Sequence[float],
        y: Sequence[float],
        fills: str | Sequence[str],
        radius: float = 2.5,
        opacity: float = 0.8,
    ) -> None:
        """Dots at (x, y); ``fills`` is one colour or one per point (NaN coordinates are left out)."""
        x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
        keep = np.isfinite(x) & np.isfinite(y)
        fills = np.asarray([fills] * len(x) if isinstance(fills, str) else list(fills), dtype=object)
        self._extend(x[keep], y[keep])
        self._marks.append(("points", (x[keep], y[keep], fills[keep]), radius, opacity))

    def line(self, x: Sequence[float], y: Sequence[float], colour: str, markers: bool = True, label: str = "") -> None:
        """A polyline through (x, y), with dots at the vertices; NaN breaks the line."""
        x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
        self._extend(x[np.isfinite(x)], y[np.isfinite(y)])
        self._marks.append(("line", (x, y), colour, markers, label))

    def rule(self, *, x: float | None = None, y: float | None = None, dashed: bool = False) -> None:
        """A thin grey line across the plot at ``x`` (vertical) or ``y`` (horizontal)."""
        self._extend([] if x is None else [x], [] if y is None else [y])
        self._marks.append(("rule", x, y, dashed))

    def text(self, x: float, y: float, text: str, anchor: str = "start", dx: float = 0.0, size: float = 11.0) -> None:
        """A text at (x, y) in data coordinates, shifted ``dx`` pixels (the image widens to hold it)."""
        self._marks.append(("text", x, y, text, anchor, dx, size))

    def legend(self, entries: list[tuple[str, str]], title: str = "") -> None:
        """A section of (label, colour) swatches right of the plot; sections stack, then form columns."""
        self._legends.append(_Legend(entries, title))

    def colour_bar(
        self,
        cmap: Colours,
        low: float,
        high: float,
        label: str,
        low_text: str | None = None,
        high_text: str | None = None,
    ) -> None:
        """A vertical colour scale right of the plot (left of any legend)."""
        self._colour_bar = ColourBar(cmap, low, high, label, low_text or "", high_text or "")

    # -- layout and rendering ----------------------------------------------------------------------
    def to_svg(self) -> str:
        """The chart as a standalone SVG document."""
        x_range, y_range = self._range(self.x, self._x_extent), self._range(self.y, self._y_extent)
        x_ticks, y_ticks = self.x.ticks(*x_range), self.y.ticks(*y_range)
        x_tick_width = max((text_width(label) for _, label in x_ticks), default=0.0)
        plot_height = max(self.plot_height, self._colour_bar.min_height() if self._colour_bar else 0.0)
        columns = _legend_columns(self._legends, plot_height)
        ylabel = wrap(self.y.label, plot_height) if self.y.label else []
        y_tick_width = max((text_width(label) for _, label in y_ticks), default=0.0)
        left = _PAD + (len(ylabel) * _LINE + _PAD / 2 if ylabel else 0) + self.y.group_width() + y_tick_width
        left += _TICK + 4
        angle = math.radians(self.x.rotate)
        if self.x.rotate and self.x.categories:  # rotated labels reach left of the first category
            left = max(left, x_tick_width * math.cos(angle) + _PAD)
        side = (self._colour_bar.width() if self._colour_bar else 0.0) + sum(
            max(legend.width() for legend in column) + _PAD for column in columns
        )
        right = _PAD + (side + _PAD if side else 0.0)
        if not self.x.rotate and x_ticks:  # a tick label is centred on its tick, the plot's edge at worst
            right = max(right, text_width(x_ticks[-1][1]) / 2 + _PAD)
        plot_width = max(self.width - left - right, 120.0)
        width = left + plot_width + right
        titles = title_lines(self.title, width) if self.title else []
        xlabel = wrap(self.x.label, width - 2 * _PAD) if self.x.label else []
        top = title_height(titles)
        x_tick_depth = FONT_SIZE + (x_tick_width * math.sin(angle) if self.x.rotate else 0.0)
        bottom = _TICK + 4 + x_tick_depth + (FONT_SIZE + _PAD if self.x.groups else 0.0)
        bottom += (_PAD + (len(xlabel) - 1) * _LINE + FONT_SIZE if xlabel else 0.0) + _PAD
        side_height = max((sum(legend.height() for legend in column) for column in columns), default=0.0)
        height = max(top + plot_height + bottom, top + side_height + _PAD)
        frame = _Frame(left, top, plot_width, plot_height, x_range, y_range, self.y.inverted)
        width += self._annotation_overflow(frame, width)
        centre = left + plot_width / 2
        parts = title_elements(titles, centre, width)
        parts += self._axes(frame, ylabel, y_tick_width, x_tick_depth)
        parts += [
            text_element(
                _clamp(centre, text_width(line), width),
                height - _PAD - (len(xlabel) - 1 - i) * _LINE,
                line,
                "middle",
                css_class="xlabel",
            )
            for i, line in enumerate(xlabel)
        ]
        parts += [_render_mark(mark, frame) for mark in self._marks]
        parts += self._side(frame, columns)
        return document(width, height, parts)

    def _extend(self, xs: Sequence[float], ys: Sequence[float]) -> None:
        """Widen the data extent to cover ``xs`` and ``ys`` (their finite minimum and maximum)."""
        for extent, values in ((self._x_extent, xs), (self._y_extent, ys)):
            values = np.asarray(values, dtype=float)
            values = values[np.isfinite(values)]
            if values.size:
                extent.extend((float(values.min()), float(values.max())))

    @staticmethod
    def _range(axis: Axis, extent: list[float]) -> tuple[float, float]:
        if axis.limits is not None:
            return axis.limits
        if axis.categories is not None:
            return -0.6, len(axis.categories) - 0.4
        extent = extent + [1.0] if axis.ranks else extent
        if not extent:
            return 0.0, 1.0
        low, high = min(extent), max(extent)
        pad = (high - low) * 0.05 if high > low else max(abs(low) * 0.1, 1.0)
        return low - pad, high + pad

    def _annotation_overflow(self, frame: _Frame, width: float) -> float:
        """How far the annotations reach past the image's right edge (less its padding)."""
        reach = 0.0
        for _, x, _, text, anchor, dx, size in (mark for mark in self._marks if mark[0] == "text"):
            share = {"start": 1.0, "middle": 0.5}.get(anchor, 0.0)
            reach = max(reach, frame.px(x) + dx + share * text_width(text, size))
        return max(0.0, reach - (width - _PAD))

    def _axes(self, frame: _Frame, ylabel: list[str], y_tick_width: float, x_tick_depth: float) -> list[str]:
        parts = [
            f"<rect class='plot-area' x='{frame.left:.1f}' y='{frame.top:.1f}' width='{frame.width:.1f}' "
            f"height='{frame.height:.1f}' fill='none' stroke='#444444' stroke-width='0.8'/>"
        ]
        bottom = frame.top + frame.height
        for value, label in self.x.ticks(*frame.x_range):
            px = frame.px(value)
            parts.append(
                f"<line x1='{px:.1f}' x2='{px:.1f}' y1='{bottom:.1f}' y2='{bottom + _TICK:.1f}' stroke='#444444'/>"
            )
            if self.x.rotate:
                ty = bottom + _TICK + FONT_SIZE * 0.9
                parts.append(
                    text_element(
                        px,
                        ty,
                        label,
                        "end",
                        css_class="tick-x",
                        transform=f"rotate(-{self.x.rotate:g} {px:.1f} {ty:.1f})",
                    )
                )
            else:
                parts.append(text_element(px, bottom + _TICK + FONT_SIZE, label, "middle", css_class="tick-x"))
        for value, label in self.y.ticks(*frame.y_range):
            py = frame.py(value)
            parts.append(
                f"<line x1='{frame.left - _TICK:.1f}' x2='{frame.left:.1f}' y1='{py:.1f}' y2='{py:.1f}' "
                "stroke='#444444'/>"
            )
            parts.append(text_element(frame.left - _TICK - 3, py + FONT_SIZE * 0.35, label, "end", css_class="tick-y"))
        parts += self._y_groups(frame, frame.left - _TICK - 3 - y_tick_width - _PAD / 2)
        parts += self._x_groups(frame, bottom + _TICK + 4 + x_tick_depth)
        cy = frame.top + frame.height / 2
        for i, line in enumerate(ylabel):
            cx = _PAD + FONT_SIZE * 0.95 + i * _LINE  # rotated: the glyphs reach ~0.95 em left of the baseline
            parts.append(
                text_element(cx, cy, line, "middle", css_class="ylabel", transform=f"rotate(-90 {cx:.1f} {cy:.1f})")
            )
        return parts

    def _y_groups(self, frame: _Frame, x: float) -> list[str]:
        """Each y group's label left of a bracket at ``x``, a line across the plot between groups."""
        parts = []
        for k, (label, first, last) in enumerate(self.y.groups):
            y0, y1 = sorted((frame.py(first - 0.4), frame.py(last + 0.4)))
            parts.append(
                f"<path class='group' d='M{x + 3:.1f} {y0:.1f}H{x:.1f}V{y1:.1f}H{x + 3:.1f}' "
                "stroke='#444444' fill='none'/>"
            )
            parts.append(text_element(x - 4, (y0 + y1) / 2 + FONT_SIZE * 0.35, label, "end", css_class="group"))
            if k:
                py = frame.py(first - 0.5)
                parts.append(
                    f"<line class='group-rule' x1='{frame.left:.1f}' x2='{frame.left + frame.width:.1f}' "
                    f"y1='{py:.1f}' y2='{py:.1f}' stroke='#444444' stroke-width='1.2'/>"
                )
        return parts

    def _x_groups(self, frame: _Frame, y: float) -> list[str]:
        """Each x group's label under a bracket at ``y``, shortened to its block's width."""
        parts = []
        image_width = frame.left + frame.width + _PAD  # at the least
        for label, first, last in self.x.groups:
            x0, x1 = frame.px(first - 0.4), frame.px(last + 0.4)
            parts.append(
                f"<path class='group' d='M{x0:.1f} {y - 3:.1f}V{y:.1f}H{x1:.1f}V{y - 3:.1f}' "
                "stroke='#444444' fill='none'/>"
            )
            shown = shorten(label, max(frame.px(last + 0.5) - frame.px(first - 0.5) - 4, 3 * FONT_SIZE))
            centre = _clamp((x0 + x1) / 2, text_width(shown), image_width)
            parts.append(text_element(centre, y + FONT_SIZE + 1, shown, "middle", css_class="group"))
        return parts

    def _side(self, frame: _Frame, columns: list[list[_Legend]]) -> list[str]:
        x = frame.left + frame.width + 2 * _PAD
        parts = []
        if self._colour_bar is not None:
            parts += self._colour_bar.render(x, frame.top, frame.height)
            x += self._colour_bar.width()
        for column in columns:
            y = frame.top
            for legend in column:
                parts += legend.render(x, y)
                y += legend.height()
            x += max(legend.width() for legend in column) + _PAD
        return parts


def _clamp(centre: float, text: float, width: float) -> float:
    """The centre of a text ``text`` pixels wide nearest ``centre`` that keeps it inside 0..``width`` (padded)."""
    return min(max(centre, _PAD + text / 2), width - _PAD - text / 2)


@dataclasses.dataclass
class _Frame:
    """Pixel geometry of the plot area and the mapping from data coordinates."""

    left: float
    top: float
    width: float
    height: float
    x_range: tuple[float, float]
    y_range: tuple[float, float]
    y_inverted: bool

    def px(self, value: float | np.ndarray) -> float | np.ndarray:
        low, high = self.x_range
        return self.left + (value - low) / (high - low) * self.width

    def py(self, value: float | np.ndarray) -> float | np.ndarray:
        low, high = self.y_range
        fraction = (value - low) / (high - low)
        return self.top + (fraction if self.y_inverted else 1 - fraction) * self.height


def _render_mark(mark: tuple, frame: _Frame) -> str:
    kind = mark[0]
    if kind == "rect":
        (x0, x1, y0, y1), fill, tooltip, css_class = mark[1:]
        left, right = frame.px(x0), frame.px(x1)
        top, bottom = sorted((frame.py(y0), frame.py(y1)))
        title = f"<title>{escape(tooltip)}</title>" if tooltip else ""
        return (
            f"<rect class='{css_class}' x='{left:.1f}' y='{top:.1f}' width='{max(right - left, 0.5):.1f}' "
            f"height='{bottom - top:.1f}' fill='{fill}'>{title}</rect>"
        )
    if kind == "error":
        y, low, high = mark[1]
        py, x0, x1 = frame.py(y), frame.px(low), frame.px(high)
        return (
            f"<path class='error' d='M{x0:.1f} {py:.1f}H{x1:.1f}M{x0:.1f} {py - 3:.1f}V{py + 3:.1f}"
            f"M{x1:.1f} {py - 3:.1f}V{py + 3:.1f}' stroke='#333333' fill='none'/>"
        )
    if kind == "points":
        return _render_points(*mark[1], radius=mark[2], opacity=mark[3], frame=frame)
    if kind == "line":
        (x, y), colour, markers, label = mark[1:]
        path = _polyline(frame, x, y)
        title = f"<title>{escape(label)}</title>" if label else ""
        dots = _render_points(x, y, [colour] * len(x), radius=3.0, opacity=1.0, frame=frame) if markers else ""
        return f"<g class='line'><path d='{path}' stroke='{colour}' stroke-width='1.8' fill='none'/>{dots}{title}</g>"
    if kind == "rule":
        x, y, dashed = mark[1:]
        dash = " stroke-dasharray='4 3'" if dashed else ""
        if x is not None:
            px = frame.px(x)
            return (
                f"<line class='rule' x1='{px:.1f}' x2='{px:.1f}' y1='{frame.top:.1f}' "
                f"y2='{frame.top + frame.height:.1f}' stroke='#999999' stroke-width='0.8'{dash}/>"
            )
        py = frame.py(y)
        return (
            f"<line class='rule' x1='{frame.left:.1f}' x2='{frame.left + frame.width:.1f}' y1='{py:.1f}' "
            f"y2='{py:.1f}' stroke='#999999' stroke-width='0.8'{dash}/>"
        )
    x, y, text, anchor, dx, size = mark[1:]
    return text_element(frame.px(x) + dx, frame.py(y) + size * 0.35, text, anchor, size=size, css_class="annotation")


def _render_points(
    x: np.ndarray, y: np.ndarray, fills: Sequence[str], *, radius: float, opacity: float, frame: _Frame
) -> str:
    """All dots of one colour as one path of zero-length round-capped segments (small and fast to draw)."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    keep = np.isfinite(x) & np.isfinite(y)
    moves = [
        f"M{px:.1f} {py:.1f}h0" for px, py in zip(frame.px(x[keep]).tolist(), frame.py(y[keep]).tolist(), strict=True)
    ]
    by_colour: dict[str, list[str]] = {}
    for move, fill in zip(moves, np.asarray(fills, dtype=object)[keep].tolist(), strict=True):
        by_colour.setdefault(fill, []).append(move)
    return "".join(
        f"<path class='points' d='{''.join(group)}' stroke='{fill}' stroke-width='{2 * radius:g}' "
        f"stroke-linecap='round' stroke-opacity='{opacity:g}'/>"
        for fill, group in by_colour.items()
    )


def _polyline(frame: _Frame, x: np.ndarray, y: np.ndarray) -> str:
    commands, pen_down = [], False
    for xi, yi in zip(x, y, strict=True):
        if not (math.isfinite(xi) and math.isfinite(yi)):
            pen_down = False
            continue
        commands.append(f"{'L' if pen_down else 'M'}{frame.px(xi):.1f} {frame.py(yi):.1f}")
        pen_down = True
    return "".join(commands)


def document(width: float, height: float, parts: list[str]) -> str:
    """A standalone SVG document of ``width`` x ``height`` pixels on white, holding ``parts``."""
    return "\n".join(
        [
            f"<svg xmlns='http://www.w3.org/2000/svg' width='{width:.0f}' height='{height:.0f}' "
            f"viewBox='0 0 {width:.0f} {height:.0f}' font-family='{FONT}' font-size='{FONT_SIZE:g}'>",
            "<rect width='100%' height='100%' fill='white'/>",
            *[part for part in parts if part],
            "</svg>",
        ]
    )


def title_lines(title: str, width: float) -> list[str]:
    """The lines of a title (its own line breaks kept) in an image ``width`` pixels wide, wrapped to fit."""
    return [piece for line in title.split("\n") for piece in wrap(line, width - 2 * _PAD, _TITLE_SIZE, bold=True)]


def title_height(lines: list[str]) -> float:
    """Pixels from the top of the image to below the title's ``lines`` (the padding alone without a title)."""
    return _PAD + (len(lines) * _TITLE_SIZE * LINE_HEIGHT + _PAD if lines else 0.0)


def title_elements(lines: list[str], centre: float, width: float) -> list[str]:
    """Bold title lines at the top of an image ``width`` wide, centred on ``centre`` as far as they fit."""
    return [
        text_element(
            _clamp(centre, text_width(line, _TITLE_SIZE, bold=True), width),
            _PAD + FONT_SIZE + i * _TITLE_SIZE * LINE_HEIGHT,
            line,
            "middle",
            size=_TITLE_SIZE,
            weight="bold",
            css_class="title",
        )
        for i, line in enumerate(lines)
    ]


def text_element(
    x: float,
    y: float,
    text: str,
    anchor: str,
    *,
    size: float | None = None,
    weight: str = "",
    css_class: str = "",
    transform: str = "",
) -> str:
    """One ``<text>`` element; ``text`` is escaped, so data never becomes markup."""
    attributes = [f"x='{x:.1f}'", f"y='{y:.1f}'", f"text-anchor='{anchor}'"]
    if size is not None:
        attributes.append(f"font-size='{size:.1f}'")
    if weight:
        attributes.append(f"font-weight='{weight}'")
    if css_class:
        attributes.append(f"class='{css_class}'")
    if transform:
        attributes.append(f"transform='{transform}'")
    return f"<text {' '.join(attributes)}>{escape(text)}</text>"

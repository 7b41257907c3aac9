"""Small SVG charts written as text: axes with ticks, bars, points, lines, colour bars and legends.

A :class:`Chart` collects marks in data coordinates and lays itself out when rendered: margins
come from the length of the labels, so no text is measured and nothing is drawn twice. The
result is a standalone SVG document that browsers (and the MLflow UI's artifact viewer) show
as an image; every text is XML-escaped, so names from the data never become markup.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Sequence
from html import escape
from typing import Protocol

import numpy as np
from matplotlib import colormaps
from matplotlib.ticker import MaxNLocator

FONT = "DejaVu Sans, Verdana, Arial, sans-serif"
FONT_SIZE = 12.0
_CHAR_WIDTH = 0.6  # average glyph width in em, on the wide side so labels never overflow
_TICK = 4.0
_PAD = 8.0
_COLOUR_LEVELS = 64  # points are drawn in one path per colour level
NAN_COLOUR = "#999999"
PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf")


def text_width(text: str, size: float = FONT_SIZE) -> float:
    """Estimated width in pixels of ``text`` in the chart font (no font metrics are read)."""
    return len(text) * size * _CHAR_WIDTH


def colours(values: np.ndarray, cmap: str, low: float | None = None, high: float | None = None) -> list[str]:
    """Hex colours of ``values`` on a matplotlib colour map, ``low``..``high`` (default: their range); NaN is grey."""
    values = np.asarray(values, dtype=float)
    finite = np.isfinite(values)
    if low is None:
        low = float(values[finite].min()) if finite.any() else 0.0
    if high is None:
        high = float(values[finite].max()) if finite.any() else 1.0
    scaled = np.clip((values - low) / (high - low), 0, 1) if high > low else np.full(values.shape, 0.5)
    levels = np.round(np.nan_to_num(scaled) * (_COLOUR_LEVELS - 1)).astype(int)
    return np.where(finite, np.asarray(_palette(cmap), dtype=object)[levels], NAN_COLOUR).tolist()


@functools.cache
def _palette(cmap: str) -> tuple[str, ...]:
    """``_COLOUR_LEVELS`` hex colours evenly spaced along a matplotlib colour map."""
    rgba = colormaps[cmap](np.linspace(0, 1, _COLOUR_LEVELS))
    return tuple("#{:02x}{:02x}{:02x}".format(*(int(round(255 * c)) for c in colour[:3])) for colour in rgba)


def format_number(value: float, decimals: int | None = None) -> str:
    """A short label for ``value``: with ``decimals`` fixed (tick labels), else 3 significant digits."""
    if value == 0:
        return "0"
    magnitude = abs(value)
    if magnitude >= 1e5 or magnitude < 1e-3:
        return f"{value:.2e}"
    return f"{value:.{decimals}f}" if decimals is not None else f"{value:.3g}"


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
    """One axis: a label, and either a numeric range with ticks or categories at positions 0..n-1."""

    label: str = ""
    categories: list[str] | None = None
    inverted: bool = False
    rotate: float = 0.0  # tick-label rotation in degrees (x axis only)
    limits: tuple[float, float] | None = None
    integer: bool = False  # ticks on whole numbers only (ranks)

    def ticks(self, low: float, high: float) -> list[tuple[float, str]]:
        if self.categories is not None:
            return [(float(i), name) for i, name in enumerate(self.categories)]
        locator = MaxNLocator(nbins=6, integer=self.integer)
        values = [float(v) for v in locator.tick_values(low, high) if low - 1e-12 <= v <= high + 1e-12]
        decimals = tick_decimals(values)
        return [(v, format_number(v, decimals)) for v in values]

    def longest_tick(self, low: float, high: float) -> float:
        return max((text_width(label) for _, label in self.ticks(low, high)), default=0.0)


@dataclasses.dataclass
class _Legend:
    entries: list[tuple[str, str]]
    title: str

    def width(self) -> float:
        return max([text_width(self.title)] + [text_width(label) + 18 for label, _ in self.entries]) + _PAD


@dataclasses.dataclass
class ColourBar:
    """A vertical colour scale: ``cmap`` from ``low`` (bottom) to ``high`` (top), with a label along it."""

    cmap: str
    low: float
    high: float
    label: str
    low_text: str = ""
    high_text: str = ""

    def __post_init__(self) -> None:
        self.low_text = self.low_text or format_number(self.low)
        self.high_text = self.high_text or format_number(self.high)

    def width(self) -> float:
        return 14 + _PAD + max(text_width(self.low_text), text_width(self.high_text)) + FONT_SIZE + 2 * _PAD

    def min_height(self) -> float:
        """The height the label along the bar needs."""
        return text_width(self.label) + 2 * _PAD

    def render(self, x: float, top: float, height: float) -> list[str]:
        """SVG elements of the bar with its top-left corner at (x, top)."""
        stops = "".join(
            f"<stop offset='{t:.2f}' stop-color='{c}'/>"
            for t, c in zip(np.linspace(0, 1, 11), colours(np.linspace(1, 0, 11), self.cmap, 0, 1), strict=True)
        )
        label_x = x + 18 + max(text_width(self.low_text), text_width(self.high_text)) + _PAD + FONT_SIZE / 2
        label_y = top + height / 2
        return [
            f"<defs><linearGradient id='colour-bar' x1='0' y1='0' x2='0' y2='1'>{stops}</linearGradient></defs>",
            f"<rect class='colour-bar' x='{x:.1f}' y='{top:.1f}' width='14' height='{height:.1f}' "
            "fill='url(#colour-bar)'/>",
            text_element(x + 18, top + FONT_SIZE * 0.8, self.high_text, "start"),
            text_element(x + 18, top + height, self.low_text, "start"),
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
    """One plot area with an x and a y axis, marks in data coordinates, an optional legend or colour bar.

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
        self._legend: _Legend | None = None
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
        """A text at (x, y) in data coordinates, shifted ``dx`` pixels."""
        self._marks.append(("text", x, y, text, anchor, dx, size))

    def legend(self, entries: list[tuple[str, str]], title: str = "") -> None:
        """(label, colour) swatches right of the plot."""
        self._legend = _Legend(entries, title)

    def colour_bar(
        self, cmap: str, low: float, high: float, label: str, low_text: str | None = None, high_text: str | None = None
    ) -> None:
        """A vertical colour scale right of the plot."""
        self._colour_bar = ColourBar(cmap, low, high, label, low_text or "", high_text or "")

    # -- layout and rendering ----------------------------------------------------------------------
    def to_svg(self) -> str:
        """The chart as a standalone SVG document."""
        x_low, x_high = self._range(self.x, self._x_extent)
        y_low, y_high = self._range(self.y, self._y_extent)
        left = _PAD + (FONT_SIZE + _PAD if self.y.label else 0) + self.y.longest_tick(y_low, y_high) + _TICK + 4
        right = _PAD + max(
            self._legend.width() if self._legend else 0, self._colour_bar.width() if self._colour_bar else 0
        )
        x_tick_depth = FONT_SIZE
        if self.x.rotate:
            x_tick_depth = self.x.longest_tick(x_low, x_high) * math.sin(math.radians(self.x.rotate)) + FONT_SIZE
        top = _PAD + (FONT_SIZE * 1.3 + _PAD if self.title else 0)
        bottom = _TICK + 4 + x_tick_depth + (_PAD + FONT_SIZE if self.x.label else 0) + _PAD
        if self.x.rotate and self.x.categories:  # rotated labels reach left of the first category
            left = max(left, self.x.longest_tick(x_low, x_high) * math.cos(math.radians(self.x.rotate)) + _PAD)
        plot_width = max(self.width - left - right, 120.0)
        width = left + plot_width + right
        plot_height = max(self.plot_height, self._colour_bar.min_height() if self._colour_bar else 0)
        height = top + plot_height + bottom
        frame = _Frame(left, top, plot_width, plot_height, (x_low, x_high), (y_low, y_high), self.y.inverted)
        parts = [title_element(left + plot_width / 2, self.title)] if self.title else []
        parts += self._axes(frame, height)
        parts += [_render_mark(mark, frame) for mark in self._marks]
        parts += self._side(frame)
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
        if not extent:
            return 0.0, 1.0
        low, high = min(extent), max(extent)
        pad = (high - low) * 0.05 if high > low else max(abs(low) * 0.1, 1.0)
        return low - pad, high + pad

    def _axes(self, frame: _Frame, height: float) -> list[str]:
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
        if self.x.label:
            parts.append(
                text_element(frame.left + frame.width / 2, height - _PAD, self.x.label, "middle", css_class="xlabel")
            )
        if self.y.label:
            cx, cy = _PAD + FONT_SIZE, frame.top + frame.height / 2
            parts.append(
                text_element(
                    cx, cy, self.y.label, "middle", css_class="ylabel", transform=f"rotate(-90 {cx:.1f} {cy:.1f})"
                )
            )
        return parts

    def _side(self, frame: _Frame) -> list[str]:
        x = frame.left + frame.width + 2 * _PAD
        parts = []
        if self._legend is not None:
            y = frame.top + FONT_SIZE
            if self._legend.title:
                parts.append(text_element(x, y, self._legend.title, "start", weight="bold"))
                y += FONT_SIZE * 1.4
            for label, colour in self._legend.entries:
                parts.append(f"<rect x='{x:.1f}' y='{y - 9:.1f}' width='12' height='10' fill='{colour}'/>")
                parts.append(text_element(x + 18, y, label, "start", css_class="legend"))
                y += FONT_SIZE * 1.4
        if self._colour_bar is not None:
            parts += self._colour_bar.render(x, frame.top, frame.height)
        return parts


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


def title_element(centre: float, title: str, line: int = 0) -> str:
    """A bold title line centred on ``centre``, at the top of the image (``line`` counts further lines down)."""
    return text_element(
        centre, _PAD + FONT_SIZE * (1 + 1.4 * line), title, "middle", size=FONT_SIZE * 1.15, weight="bold"
    )


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

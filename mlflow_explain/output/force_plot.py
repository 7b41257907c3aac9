"""shap's additive force plot of one row as SVG text: red pushes the output up from the base value, blue down.

The layout of ``shap.plots.force``: one band of arrow-shaped segments spanning the row's SHAP values,
the positive ones (red, pointing right) ending at f(x) with the largest nearest to it, the negative
ones (blue, pointing left) starting there. An axis with round ticks is above the band, the base value
and f(x) are marked above it, and each feature's "name = value" label is below its segment, joined to
it by a thin line. Labels are wrapped onto a few short lines and laid out from their measured widths
(``text.text_width``): the largest contributions are labelled while they fit side by side, the smaller
ones at the outer ends of each colour are counted together as "+N more", so no label is cut, clipped
or drawn over another.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Sequence
from html import escape

import numpy as np
from matplotlib.colors import to_hex
from matplotlib.ticker import MaxNLocator
from shap.plots.colors import blue_rgb, red_rgb

from .svg import (
    document,
    format_number,
    significant_decimals,
    text_element,
    tick_decimals,
    title_elements,
    title_height,
    title_lines,
)
from .text import FONT_SIZE, LINE_HEIGHT, text_width, wrap

POSITIVE, NEGATIVE = to_hex(red_rgb), to_hex(blue_rgb)  # shap's red (pushes the output up) and blue (down)
NICE_STEPS = (1, 2, 2.5, 5, 10)  # tick steps are one of these times a power of ten
_PAD = 8.0  # between the image's edge and any text
_SIDE = 16.0  # between the image's edge and the band
_BAND = 22.0  # height of the band of segments
_TIP = 7.0  # how far an arrow's point reaches
_LABEL_GAP = 10.0  # between two labels side by side
_LABEL_WIDTH = 120.0  # labels wider than this are wrapped onto lines this wide
_MAX_LINES = 4  # a label that needs more does not fit (its segment's tooltip still names it)
_LEADER = 18.0  # from the band to the labels below it, or from the markers to the axis
_TICK = 4.0
_TICK_SPACING = 90.0  # pixels per tick at the most
_LINE = FONT_SIZE * LINE_HEIGHT
_CAPTION_SIZE = 11.0


@dataclasses.dataclass
class ForcePlot:
    """The force plot of one row, drawn as a standalone SVG document by :meth:`to_svg`.

    Parameters
    ----------
    title : str
        Which row, and which output of the model.
    base_value : float
        The expected model output E[f(X)], where the contributions start.
    contributions : sequence of float
        The row's SHAP value of each feature; ``base_value`` plus their sum is f(x).
    labels : list of str
        Each feature's label, "name = value".
    unit : str
        What the model output is ("log-odds (margin) of class '1'", "probability", "prediction").
    width : float
        Width of the image in pixels. 640 is shown at its size in the report (up to 960 pixels wide)
        and at 0.9 of it in the MLflow artifact viewer at 1400 pixels, its 12 px text above 10 px.
    """

    title: str
    base_value: float
    contributions: Sequence[float]
    labels: list[str]
    unit: str
    width: float = 640.0

    def to_svg(self) -> str:
        """The force plot as a standalone SVG document."""
        contributions = np.asarray(self.contributions, dtype=float)
        output = self.base_value + float(contributions.sum())
        segments = _segments(contributions, output)
        scale = _Scale(*_span(segments, output), _SIDE, self.width - _SIDE)
        decimals = significant_decimals(contributions, digits=3)
        titles = title_lines(self.title, self.width) if self.title else []
        parts = title_elements(titles, self.width / 2, self.width)
        legend_baseline = title_height(titles) + FONT_SIZE
        parts.append(_direction_legend(self.width / 2, legend_baseline))
        marker_baseline = legend_baseline + _LINE + _PAD / 2
        axis_y = marker_baseline + _LEADER + FONT_SIZE + 3 + _TICK
        markers = [
            _Marker(f"base value = {self.base_value:.{decimals}f}", scale.px(self.base_value), bold=False),
            _Marker(f"f(x) = {output:.{decimals}f}", scale.px(output), bold=True),
        ]
        parts += _markers(markers, marker_baseline, axis_y, self.width)
        parts += _axis(scale, axis_y, self.width, [marker.x for marker in markers])
        band_top = axis_y + 3
        parts += [_segment_path(segment, scale, band_top, self.labels) for segment in segments]
        labels_top = band_top + _BAND + _LEADER
        label_parts, labels_height = _feature_labels(
            segments, self.labels, scale, band_top + _BAND, labels_top, self.width
        )
        parts += label_parts
        caption = wrap(_caption(self.unit, contributions), self.width - 2 * _PAD, _CAPTION_SIZE)
        caption_top = labels_top + labels_height + _PAD
        step = _CAPTION_SIZE * LINE_HEIGHT
        parts += [
            text_element(
                self.width / 2,
                caption_top + _CAPTION_SIZE + i * step,
                line,
                "middle",
                size=_CAPTION_SIZE,
                css_class="xlabel",
            )
            for i, line in enumerate(caption)
        ]
        return document(self.width, caption_top + len(caption) * step + _PAD, parts)


@dataclasses.dataclass
class _Segment:
    """One feature's stretch of the band, ``start`` < ``end`` in output units; ``outer``: farthest from f(x)."""

    feature: int
    start: float
    end: float
    contribution: float
    outer: bool

    @property
    def positive(self) -> bool:
        return self.contribution > 0


def _segments(contributions: np.ndarray, output: float) -> list[_Segment]:
    """The band from left to right: positive contributions ending at ``output``, then negative ones from there.

    Within each colour the largest is nearest ``output`` (shap's order); zero contributions have no segment.
    """
    positive = [int(j) for j in np.argsort(contributions, kind="stable") if contributions[j] > 0]
    negative = [int(j) for j in np.argsort(contributions, kind="stable") if contributions[j] < 0]
    segments = []
    start = output - float(contributions[positive].sum())
    for k, j in enumerate(positive):  # smallest first, far left
        segments.append(_Segment(j, start, start + contributions[j], float(contributions[j]), outer=k == 0))
        start += contributions[j]
    end = output
    for k, j in enumerate(negative):  # largest (most negative) first, next to f(x)
        segments.append(_Segment(j, end, end - contributions[j], float(contributions[j]), outer=k == len(negative) - 1))
        end -= contributions[j]
    return segments


def _span(segments: list[_Segment], output: float) -> tuple[float, float]:
    """The output range the band covers (it holds the base value and f(x)), or a unit around f(x) without one."""
    if not segments:
        return output - 1.0, output + 1.0
    return segments[0].start, segments[-1].end


@dataclasses.dataclass
class _Scale:
    """Output units to pixels: ``low``..``high`` onto ``left``..``right``."""

    low: float
    high: float
    left: float
    right: float

    def px(self, value: float) -> float:
        return self.left + (value - self.low) / (self.high - self.low) * (self.right - self.left)


def nice_ticks(low: float, high: float, most: int) -> list[float]:
    """At most ``most`` tick values within ``low``..``high``, a step of 1, 2, 2.5 or 5 times a power of ten apart."""
    locator = MaxNLocator(nbins=max(most - 1, 1), steps=list(NICE_STEPS))
    values = [float(v) for v in locator.tick_values(low, high)]
    return [v for v in values if low - 1e-9 * (high - low) <= v <= high + 1e-9 * (high - low)]


def _axis(scale: _Scale, y: float, width: float, marker_xs: list[float]) -> list[str]:
    """The axis line at ``y`` with round ticks and their labels above it.

    A tick label is left out (its tick stays) where it would reach past the image's edge or touch a
    line joining the base value or f(x) to the axis, so no number sits on another.
    """
    ticks = nice_ticks(scale.low, scale.high, max(2, int((scale.right - scale.left) // _TICK_SPACING)))
    decimals = tick_decimals(ticks)
    parts = [
        f"<line class='axis' x1='{scale.left:.1f}' x2='{scale.right:.1f}' y1='{y:.1f}' y2='{y:.1f}' "
        "stroke='#999999' stroke-width='0.8'/>"
    ]
    for value in ticks:
        x = scale.px(value)
        parts.append(f"<line x1='{x:.1f}' x2='{x:.1f}' y1='{y - _TICK:.1f}' y2='{y:.1f}' stroke='#999999'/>")
        label = format_number(value, decimals)
        half = text_width(label) / 2 + 3
        inside = _PAD <= x - half and x + half <= width - _PAD
        if inside and all(abs(x - marker) > half for marker in marker_xs):
            parts.append(text_element(x, y - _TICK - 3, label, "middle", css_class="tick-x"))
    return parts


@dataclasses.dataclass
class _Marker:
    """A label above the axis ("f(x) = ...") for the output value at pixel ``x``."""

    text: str
    x: float
    bold: bool

    def width(self) -> float:
        return text_width(self.text, bold=self.bold)


def _markers(markers: list[_Marker], baseline: float, axis_y: float, width: float) -> list[str]:
    """The markers' labels side by side on ``baseline``, each joined by a grey line to its value on the axis."""
    markers = sorted(markers, key=lambda marker: marker.x)
    lefts = spread([m.x for m in markers], [m.width() for m in markers], _PAD, width - _PAD, _LABEL_GAP)
    parts = []
    for marker, left in zip(markers, lefts, strict=True):
        centre = left + marker.width() / 2
        weight = "bold" if marker.bold else ""
        parts.append(text_element(centre, baseline, marker.text, "middle", weight=weight, css_class="marker"))
        parts.append(
            f"<path class='marker-line' d='M{centre:.1f} {baseline + 4:.1f}L{marker.x:.1f} {baseline + 10:.1f}"
            f"V{axis_y:.1f}' stroke='#555555' stroke-width='0.8' fill='none'/>"
        )
    return parts


def _direction_legend(centre: float, baseline: float) -> str:
    """shap's "higher ⇄ lower" key: red pushes the output higher, blue lower."""
    return (
        f"<text class='direction' x='{centre:.1f}' y='{baseline:.1f}' text-anchor='middle' fill='#555555'>"
        f"<tspan fill='{POSITIVE}'>higher</tspan> ⇄ <tspan fill='{NEGATIVE}'>lower</tspan></text>"
    )


def _segment_path(segment: _Segment, scale: _Scale, top: float, labels: list[str]) -> str:
    """One arrow-shaped segment pointing the way it pushes, its feature's label and SHAP value as its tooltip.

    A segment's point fills the notch in the back of its neighbour towards f(x), so the segments tile
    the band, white chevrons (their outlines) between them; the outermost of each colour has a flat back.
    """
    left, right = scale.px(segment.start), scale.px(segment.end)
    mid, bottom = top + _BAND / 2, top + _BAND
    if segment.positive:  # points right, its back at ``left``
        head, sign = right, -1.0
        back = min(left, right - _TIP) if segment.outer else left
    else:  # points left, its back at ``right``
        head, sign = left, 1.0
        back = max(right, left + _TIP) if segment.outer else right
    corner = head + sign * _TIP  # where the point's slopes start
    back_corner = back if segment.outer else back + sign * _TIP
    notch = "" if segment.outer else f"L{back:.1f} {mid:.1f}"
    path = (
        f"M{back_corner:.1f} {top:.1f}L{corner:.1f} {top:.1f}L{head:.1f} {mid:.1f}L{corner:.1f} {bottom:.1f}"
        f"L{back_corner:.1f} {bottom:.1f}{notch}Z"
    )
    colour = POSITIVE if segment.positive else NEGATIVE
    tooltip = f"{labels[segment.feature]}: {segment.contribution:+.4g}"
    return (
        f"<path class='segment' d='{path}' fill='{colour}' stroke='white' stroke-width='1'>"
        f"<title>{escape(tooltip)}</title></path>"
    )


@dataclasses.dataclass
class _Label:
    """A label under the band: its text, colour, and the pixel ``anchor`` of what it names.

    A label wider than ``_LABEL_WIDTH`` is wrapped onto lines of that width (a long name is
    wrapped, never cut), so more of them fit side by side; one that needs more than ``_MAX_LINES``
    lines does not fit, and is counted in its colour's "+N more".
    """

    text: str
    colour: str
    anchor: float

    @property
    def lines(self) -> tuple[str, ...]:
        return _wrapped(self.text)

    def width(self) -> float:
        return _wrapped_width(self.text)


@functools.lru_cache(maxsize=4096)
def _wrapped(text: str) -> tuple[str, ...]:
    """``text`` wrapped onto lines ``_LABEL_WIDTH`` wide (kept: the labels are tried many times over)."""
    return tuple(wrap(text, _LABEL_WIDTH))


@functools.lru_cache(maxsize=4096)
def _wrapped_width(text: str) -> float:
    return max(text_width(line) for line in _wrapped(text))


def _feature_labels(
    segments: list[_Segment], labels: list[str], scale: _Scale, band_bottom: float, top: float, width: float
) -> tuple[list[str], float]:
    """The chosen labels (:func:`_choose_labels`) side by side from ``top``, each joined to its segment by a line.

    Returns the SVG parts and the height the labels take (their most lines).
    """
    chosen = _choose_labels(segments, labels, scale, width - 2 * _PAD)
    lefts = spread(
        [label.anchor for label in chosen], [label.width() for label in chosen], _PAD, width - _PAD, _LABEL_GAP
    )
    parts = []
    for label, left in zip(chosen, lefts, strict=True):
        centre = left + label.width() / 2
        lines = "".join(
            f"<tspan x='{centre:.1f}' dy='{0 if i == 0 else _LINE:g}'>{escape(line)}</tspan>"
            for i, line in enumerate(label.lines)
        )
        parts.append(
            f"<g class='feature-label' fill='{label.colour}'>"
            f"<path d='M{label.anchor:.1f} {band_bottom + 2:.1f}V{band_bottom + 5:.1f}L{centre:.1f} {top - 3:.1f}' "
            f"stroke='{label.colour}' stroke-opacity='0.6' stroke-width='0.8' fill='none'/>"
            f"<text class='feature' x='{centre:.1f}' y='{top + FONT_SIZE:.1f}' text-anchor='middle'>{lines}</text></g>"
        )
    return parts, max((len(label.lines) for label in chosen), default=1) * _LINE


def _choose_labels(segments: list[_Segment], labels: list[str], scale: _Scale, room: float) -> list[_Label]:
    """The labels that fit side by side in ``room`` pixels, in band order.

    Segments are labelled largest first while the labels, with a "+N more" for each colour's
    unlabelled rest, fit; once a label does not fit, its colour takes no more, so each colour's
    labelled segments are its largest (those nearest f(x)) and "+N more" names the outer rest.
    A segment's label is ``labels[segment.feature]``.
    """
    named: set[int] = set()
    full: set[bool] = set()  # colours that take no more labels
    for k in sorted(range(len(segments)), key=lambda k: -abs(segments[k].contribution)):
        if segments[k].positive in full:
            continue
        if _fits(_labels_for(segments, labels, scale, named | {k}), room):
            named.add(k)
        else:
            full.add(segments[k].positive)
    chosen = _labels_for(segments, labels, scale, named)
    return chosen if _fits(chosen, room) else []


def _labels_for(segments: list[_Segment], labels: list[str], scale: _Scale, named: set[int]) -> list[_Label]:
    """A label for each ``named`` segment and one "+N more" per colour for the rest (at their middle), by anchor."""
    chosen = []
    for positive, colour in ((True, POSITIVE), (False, NEGATIVE)):
        rest = [s for k, s in enumerate(segments) if s.positive == positive and k not in named]
        if rest:
            middle = scale.px((min(s.start for s in rest) + max(s.end for s in rest)) / 2)
            chosen.append(_Label(f"+{len(rest)} more", colour, middle))
    for k in named:
        segment = segments[k]
        colour = POSITIVE if segment.positive else NEGATIVE
        chosen.append(_Label(labels[segment.feature], colour, scale.px((segment.start + segment.end) / 2)))
    return sorted(chosen, key=lambda label: label.anchor)


def _fits(chosen: list[_Label], room: float) -> bool:
    """The labels fit side by side in ``room`` pixels, none on more than ``_MAX_LINES`` lines."""
    wide = sum(label.width() for label in chosen) + _LABEL_GAP * max(len(chosen) - 1, 0)
    return wide <= room and all(len(label.lines) <= _MAX_LINES for label in chosen)


def spread(anchors: Sequence[float], widths: Sequence[float], low: float, high: float, gap: float) -> list[float]:
    """Left edges of boxes side by side, in order, each as near centred on its anchor as the others allow.

    Boxes keep ``gap`` between them and stay within ``low``..``high``, which must hold them all.
    Boxes that would overlap are merged into a block centred on their anchors' mean (least squares),
    until no two blocks overlap.

    Parameters
    ----------
    anchors : sequence of float
        Where each box's centre would be on its own, in increasing order.
    widths : sequence of float
        Each box's width.
    low, high : float
        The bounds the boxes stay within.
    gap : float
        The least space between two boxes.

    Returns
    -------
    list of float
        The left edge of each box.
    """
    offsets = np.concatenate([[0.0], np.cumsum(np.asarray(widths, dtype=float) + gap)])  # box i's left in a block

    def place(first: int, last: int) -> tuple[float, float]:
        span = offsets[last + 1] - offsets[first] - gap
        ideal = float(
            np.mean([anchors[i] - widths[i] / 2 - (offsets[i] - offsets[first]) for i in range(first, last + 1)])
        )
        return min(max(ideal, low), high - span), span

    blocks: list[tuple[int, int, float, float]] = []  # first box, last box, left edge, width
    for i in range(len(anchors)):
        first = i
        left, span = place(i, i)
        while blocks and blocks[-1][2] + blocks[-1][3] + gap > left:
            first = blocks.pop()[0]
            left, span = place(first, i)
        blocks.append((first, i, left, span))
    return [left + offsets[i] - offsets[first] for first, last, left, _ in blocks for i in range(first, last + 1)]


def _caption(unit: str, contributions: np.ndarray) -> str:
    """What the axis is, how to read the colours, and how many features had no effect (no segment)."""
    zero = int((contributions == 0).sum())
    silent = f" {zero} feature{'s' if zero > 1 else ''} with a SHAP value of 0 not drawn." if zero else ""
    return (
        f"Model output: {unit}. Red features push it higher than the base value E[f(X)], blue lower; "
        f"together they reach f(x).{silent}"
    )

"""Text measured as the charts draw it: widths from DejaVu Sans's glyph advances, shortening and wrapping.

The SVG charts (``svg.py``) lay themselves out from these widths, so labels are never clipped and
nothing is drawn twice to be measured.
"""

from __future__ import annotations

import functools
from pathlib import Path

import matplotlib
from matplotlib import ft2font

FONT = "DejaVu Sans, Verdana, Arial, sans-serif"
FONT_SIZE = 12.0
LINE_HEIGHT = 1.25  # in em, between the lines of a wrapped text
_WIDTH_MARGIN = 1.05  # measured widths are DejaVu Sans's; other fonts of the stack run up to a few % wider


def text_width(text: str, size: float = FONT_SIZE, bold: bool = False) -> float:
    """Width in pixels of ``text`` in the chart font, from DejaVu Sans's glyph advances (no kerning: on the wide side).

    A character the font lacks (CJK, say) counts one em, as wide as the fallback fonts draw it.
    """
    return sum(_advance(character, bold) for character in text) * size * _WIDTH_MARGIN


@functools.cache
def _font(bold: bool) -> ft2font.FT2Font:
    """matplotlib's own DejaVu Sans (the first font of :data:`FONT`), sized so advances read in thousandths of an em."""
    name = "DejaVuSans-Bold.ttf" if bold else "DejaVuSans.ttf"
    font = ft2font.FT2Font(str(Path(matplotlib.get_data_path()) / "fonts" / "ttf" / name))
    font.set_size(1000, 72)
    return font


@functools.cache
def _advance(character: str, bold: bool) -> float:
    """Advance width of one character in em (whitespace as a space, a missing glyph as one em)."""
    font = _font(bold)
    code = ord(" ") if character.isspace() else ord(character)
    if not font.get_char_index(code):
        return 1.0
    return font.load_char(code).horiAdvance / 64 / 1000


def shorten(text: str, width: float, size: float = FONT_SIZE, bold: bool = False) -> str:
    """``text``, cut and ended with "…" when it is wider than ``width`` pixels."""
    if text_width(text, size, bold) <= width:
        return text
    while text and text_width(text + "…", size, bold) > width:
        text = text[:-1]
    return text + "…"


def wrap(text: str, width: float, size: float = FONT_SIZE, bold: bool = False) -> list[str]:
    """``text`` broken into lines no wider than ``width`` pixels: at spaces, inside a word only when it must."""
    lines: list[str] = []
    line = ""
    for word in text.split(" "):
        candidate = f"{line} {word}" if line else word
        if text_width(candidate, size, bold) <= width:
            line = candidate
            continue
        if line:
            lines.append(line)
        *whole, line = _split_word(word, width, size, bold)
        lines += whole
    return lines + [line] if line else lines


def _split_word(word: str, width: float, size: float, bold: bool) -> list[str]:
    """``word`` in pieces no wider than ``width`` (one character a piece at the least)."""
    pieces = []
    while len(word) > 1 and text_width(word, size, bold) > width:
        cut = 1
        while cut < len(word) - 1 and text_width(word[: cut + 1], size, bold) <= width:
            cut += 1
        pieces.append(word[:cut])
        word = word[cut:]
    return pieces + [word]

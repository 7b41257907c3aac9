"""How a layer's output becomes the (batch, channels, rows, columns) map that Grad-CAM weighs (no MLflow).

A convolution gives that map as it is. A vision transformer's block gives a token sequence
(batch, tokens, channels): the class token (ViT) and the distillation token (DeiT) come first and
the patch tokens after them fill the patch grid row by row, which is how pytorch-grad-cam's
``reshape_transform`` for ViTs reads them. A Swin block gives the grid channels-last (batch, rows,
columns, channels), or flat tokens without a class token. :func:`read_layout` tells which from the
output's shape for one image, the image's size and, when given, the grid.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Literal

import torch

MAX_PREFIX_TOKENS = 8  # tokens before the patches that may be dropped: class, distillation, registers
_ASPECT_TOLERANCE = 0.15  # a grid's rows / columns may differ this much (relative) from the image's height / width

_PREFIX_NAMES = {
    0: "no class token",
    1: "the class token dropped",
    2: "the class and distillation tokens dropped",
}

Kind = Literal["channels_first", "channels_last", "tokens"]


@dataclasses.dataclass(frozen=True)
class FeatureLayout:
    """Where the channels and the patch grid are in a layer's output.

    Parameters
    ----------
    kind : {"channels_first", "channels_last", "tokens"}
        (batch, channels, rows, columns) as a convolution gives; (batch, rows, columns, channels) as
        a Swin block gives; or (batch, tokens, channels) as a ViT block gives.
    grid : (int, int)
        Rows and columns of the map (of the patch grid, for tokens).
    prefix_tokens : int, default=0
        Tokens before the patch tokens, dropped (a class token, a distillation token).
    sequence_first : bool, default=False
        Tokens laid out (tokens, batch, channels), the default of ``torch.nn.Transformer`` layers.
    """

    kind: Kind
    grid: tuple[int, int]
    prefix_tokens: int = 0
    sequence_first: bool = False

    @property
    def reshaped(self) -> bool:
        """Whether the output must be rearranged into a (batch, channels, rows, columns) map."""
        return self.kind != "channels_first"

    def describe(self) -> str:
        """The layout in a few words, for the log, ``summary.json`` and the report."""
        rows, columns = self.grid
        if self.kind == "channels_first":
            return f"a {rows} x {columns} feature map"
        if self.kind == "channels_last":
            return f"a channels-last {rows} x {columns} map"
        dropped = _PREFIX_NAMES.get(self.prefix_tokens, f"the first {self.prefix_tokens} tokens dropped")
        return f"{rows * columns} patch tokens reshaped to a {rows} x {columns} grid ({dropped})"

    def to_map(self, output: torch.Tensor) -> torch.Tensor:
        """The layer's output as a (batch, channels, rows, columns) map (the patch tokens only)."""
        if self.kind == "channels_first":
            return output
        if self.kind == "channels_last":
            return output.permute(0, 3, 1, 2)
        tokens = output.transpose(0, 1) if self.sequence_first else output
        patches = tokens[:, self.prefix_tokens :]
        return patches.reshape(len(patches), *self.grid, patches.shape[-1]).permute(0, 3, 1, 2)

    def from_map(self, feature_map: torch.Tensor, output: torch.Tensor) -> torch.Tensor:
        """The layer's output rebuilt from its map: the inverse of :meth:`to_map`, prefix tokens from ``output``."""
        if self.kind == "channels_first":
            return feature_map
        if self.kind == "channels_last":
            return feature_map.permute(0, 2, 3, 1)
        tokens = output.transpose(0, 1) if self.sequence_first else output
        rebuilt = torch.cat([tokens[:, : self.prefix_tokens], feature_map.flatten(2).transpose(1, 2)], dim=1)
        return rebuilt.transpose(0, 1) if self.sequence_first else rebuilt


def read_layout(
    shape: tuple[int, ...],
    image_size: tuple[int, int],
    grid: tuple[int, int] | None = None,
    channels_last: bool = False,
) -> FeatureLayout | None:
    """The layout of a layer's output of ``shape`` for one image of ``image_size``, or None when it is no map.

    Parameters
    ----------
    shape : tuple of int
        The output's shape for a batch of one image.
    image_size : (int, int)
        The image's height and width.
    grid : (int, int), default=None
        The patch grid (rows, columns), when known (config ``gradcam.token_grid``); default: the grid
        of the image's proportions that the token count fills after at most ``MAX_PREFIX_TOKENS``
        prefix tokens (the fewest dropped).
    channels_last : bool, default=False
        The layer normalizes its last dimension (a LayerNorm), so a 4-d output is channels-last.

    Returns
    -------
    FeatureLayout or None
    """
    if len(shape) == 4 and shape[0] == 1:
        first, last = tuple(shape[2:]), tuple(shape[1:3])
        if grid is not None:
            if last == grid and (channels_last or first != grid):
                return FeatureLayout("channels_last", last)
            return FeatureLayout("channels_first", first) if first == grid else None
        if _fits(last, image_size) and (channels_last or not _fits(first, image_size)):
            return FeatureLayout("channels_last", last)
        return FeatureLayout("channels_first", first)
    if len(shape) == 3 and 1 in shape[:2]:
        sequence_first = shape[0] != 1
        found = _token_grid(shape[0] if sequence_first else shape[1], image_size, grid)
        if found is not None:
            prefix, rows_columns = found
            return FeatureLayout("tokens", rows_columns, prefix, sequence_first)
    return None


def _token_grid(
    n_tokens: int, image_size: tuple[int, int], grid: tuple[int, int] | None
) -> tuple[int, tuple[int, int]] | None:
    """(prefix tokens, grid) such that the tokens after the prefix fill the grid, fewest prefix tokens first."""
    if grid is not None:
        prefix = n_tokens - grid[0] * grid[1]
        return (prefix, grid) if 0 <= prefix <= MAX_PREFIX_TOKENS else None
    height, width = image_size
    for prefix in range(min(MAX_PREFIX_TOKENS, n_tokens) + 1):
        patches = n_tokens - prefix
        rows = round(math.sqrt(patches * height / width))
        if rows >= 2 and patches % rows == 0 and patches // rows >= 2 and _fits((rows, patches // rows), image_size):
            return prefix, (rows, patches // rows)
    return None


def _fits(grid: tuple[int, int], image_size: tuple[int, int]) -> bool:
    """Whether a grid can cover the image: no larger than it, of its proportions within the tolerance."""
    (rows, columns), (height, width) = grid, image_size
    if not (1 <= rows <= height and 1 <= columns <= width):
        return False
    return abs(rows * width - columns * height) <= _ASPECT_TOLERANCE * columns * height

"""Grad-CAM heatmaps of a PyTorch image classifier, computed with Captum's ``LayerGradCam`` (no MLflow).

Captum (maintained by the PyTorch team) computes the gradients and the channel-weighted
activations of the target layer; :mod:`.target_layer` chooses that layer and :mod:`.feature_layout`
reads a transformer's tokens as their patch grid. Batching, the shown images, upsampling and the
faithfulness test are :mod:`.image_attribution`'s.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import torch
from captum.attr import LayerGradCam

from ..results import GradcamResult
from .faithfulness import Fill
from .feature_layout import FeatureLayout
from .image_attribution import ImageAttribution, attribute_images
from .target_layer import TargetLayer, choose_target_layer

if TYPE_CHECKING:
    from ..config import ExplainConfig

logger = logging.getLogger(__name__)


class GradCam(ImageAttribution):
    """Grad-CAM of one layer: the ReLU of its activations weighted by their mean gradient, at its resolution.

    A transformer layer's tokens are read as their patch grid (:mod:`.feature_layout`): a hook on
    the layer passes its output through a :class:`PatchGrid` module, whose (batch, channels, rows,
    columns) output Captum's ``LayerGradCam`` reads, and rebuilds the tokens from it, so the model
    computes exactly what it did.

    Parameters
    ----------
    model : torch.nn.Module
        The classifier.
    target_layer : str, default=None
        Name of the layer to explain (as in ``model.named_modules()``); default the layer
        :func:`~.target_layer.choose_target_layer` recommends (a transformer's last block's first
        norm, else the last ``Conv2d`` the forward pass runs).
    token_grid : (int, int), default=None
        The patch grid of a transformer layer's tokens; default inferred from the token count and
        the image's size.
    """

    result_type = GradcamResult

    def __init__(
        self, model: torch.nn.Module, target_layer: str | None = None, token_grid: tuple[int, int] | None = None
    ):
        super().__init__(model)
        self.target_layer, self.token_grid = target_layer, token_grid
        self.chosen: TargetLayer | None = None
        self.cam: LayerGradCam | None = None
        self.grid: PatchGrid | None = None
        self._any_heat = False

    @classmethod
    def from_config(cls, model: torch.nn.Module, config: ExplainConfig, target_layer: str | None = None) -> GradCam:
        """Grad-CAM of ``target_layer``, else of ``gradcam.target_layer``, else of the recommended layer."""
        grid = config.gradcam.token_grid
        return cls(model, target_layer or config.gradcam.target_layer, tuple(grid) if grid else None)

    def setup(self, example: torch.Tensor) -> None:
        self.chosen = choose_target_layer(self.model, self.target_layer, example, self.token_grid)
        self.grid = PatchGrid(self.chosen.layout) if self.chosen.layout.reshaped else None
        self.cam = LayerGradCam(self.model, self.grid or self.chosen.module)
        self._any_heat = False

    def attribute(self, batch: torch.Tensor, classes: torch.Tensor) -> torch.Tensor:
        hook = None if self.grid is None else self.chosen.module.register_forward_hook(self.grid.splice)
        try:
            raw = self.cam.attribute(batch, target=classes, relu_attributions=True)[:, 0]
        finally:
            if hook is not None:
                hook.remove()
        self._any_heat = self._any_heat or bool(raw.detach().any())
        return raw

    def details(self) -> dict[str, Any]:
        if not self._any_heat:
            logger.warning(
                "Every Grad-CAM map of layer %s is zero: no gradient-weighted activation there is positive for the "
                "explained classes (untrained weights, or a transformer layer after the last attention, whose patch "
                "tokens get no gradient from the class token).",
                self.chosen.name,
            )
        return {
            "target_layer": self.chosen.name,
            "target_layer_reason": self.chosen.reason,
            "layer_layout": self.chosen.layout.describe(),
        }


class PatchGrid(torch.nn.Module):
    """The target layer's output as a (batch, channels, rows, columns) map: the module Captum's Grad-CAM reads.

    Parameters
    ----------
    layout : FeatureLayout
        Where the channels and the patch grid are in the target layer's output.
    """

    def __init__(self, layout: FeatureLayout):
        super().__init__()
        self.layout = layout

    def forward(self, output: torch.Tensor) -> torch.Tensor:
        return self.layout.to_map(output)

    def splice(self, _layer: torch.nn.Module, _inputs: Any, output: Any) -> Any:
        """A forward hook of the target layer: its output rebuilt from this module's map (the same values)."""
        tensor = output[0] if isinstance(output, tuple) else output
        rebuilt = self.layout.from_map(self(tensor), tensor)
        return (rebuilt, *output[1:]) if isinstance(output, tuple) else rebuilt


def gradcam(
    model: torch.nn.Module,
    images: Any,
    labels: Any = None,
    class_names: Sequence[str] | None = None,
    *,
    target_layer: str | None = None,
    token_grid: tuple[int, int] | None = None,
    max_images: int = 32,
    max_rows: int = 1000,
    batch_size: int = 64,
    deletion_fraction: float = 0.2,
    deletion_fill: Fill = "zero",
    random_state: int = 0,
) -> GradcamResult:
    """Grad-CAM heatmaps of the predicted and the true class, and how faithful they are.

    Parameters
    ----------
    model : torch.nn.Module
        A classifier returning one score (logit or probability) per class; it stays on its device.
    images : array or Tensor of shape (n, C, H, W), (n, H, W, C), or (n, H, W) for one channel
        Validation images, prepared as the model expects them.
    labels : array-like of shape (n,), default=None
        True class indices; they add the true-class heatmaps and the misclassified images.
    class_names : sequence of str, default=None
        One name per class (default: the class indices).
    target_layer : str, default=None
        Name of the layer to explain (as in ``model.named_modules()``); default the last block's
        first norm of a vision transformer, else the last ``Conv2d`` the forward pass runs.
    token_grid : (int, int), default=None
        The patch grid (rows, columns) of a transformer layer's tokens; default inferred from the
        token count and the image's size.
    max_images : int, default=32
        Images drawn in the grids: misclassified ones always among them, the rest a seeded
        choice balanced over classes.
    max_rows : int, default=1000
        Images explained at most (a seeded sample beyond that, always holding the shown ones).
    batch_size : int, default=64
        Images per forward/backward pass.
    deletion_fraction : float, default=0.2
        Share of the pixels removed by the faithfulness test.
    deletion_fill : {"zero", "blur"}, default="zero"
        What the removed pixels become.
    random_state : int, default=0
        Seed of every random choice (shown images, sample, random pixels).

    Returns
    -------
    GradcamResult

    Raises
    ------
    InvalidInputError
        On images of the wrong shape or channel count, labels out of range, a layer whose output
        is no map, no layer to read without ``target_layer``, or a model that is not a classifier.

    Examples
    --------
    >>> result = gradcam(cnn, images, labels, class_names=["cat", "dog"])  # doctest: +SKIP
    >>> result.deletion_drop > result.random_drop  # doctest: +SKIP
    True
    """
    return attribute_images(
        GradCam(model, target_layer, token_grid),
        images,
        labels,
        class_names,
        max_images=max_images,
        max_rows=max_rows,
        batch_size=batch_size,
        deletion_fraction=deletion_fraction,
        deletion_fill=deletion_fill,
        random_state=random_state,
    )

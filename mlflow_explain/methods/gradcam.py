"""Grad-CAM heatmaps of a PyTorch image classifier, computed with Captum's ``LayerGradCam`` (no MLflow).

Captum (maintained by the PyTorch team) computes the gradients and the channel-weighted
activations of the target layer; this method finds that layer and reads its maps. Batching,
the shown images, upsampling and the faithfulness test are :mod:`.image_attribution`'s.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import torch
from captum.attr import LayerGradCam

from ..errors import InvalidInputError
from ..results import GradcamResult
from .faithfulness import Fill
from .image_attribution import ImageAttribution, attribute_images, forward

if TYPE_CHECKING:
    from ..config import ExplainConfig

logger = logging.getLogger(__name__)


class GradCam(ImageAttribution):
    """Grad-CAM of one layer: the ReLU of its activations weighted by their mean gradient, at its resolution.

    Parameters
    ----------
    model : torch.nn.Module
        The classifier.
    target_layer : str, default=None
        Name of the layer to explain (as in ``model.named_modules()``); default the last
        ``Conv2d`` the forward pass runs.
    """

    result_type = GradcamResult

    def __init__(self, model: torch.nn.Module, target_layer: str | None = None):
        super().__init__(model)
        self.target_layer = target_layer
        self.layer_name = ""
        self.cam: LayerGradCam | None = None

    @classmethod
    def from_config(cls, model: torch.nn.Module, config: ExplainConfig, target_layer: str | None = None) -> GradCam:
        """Grad-CAM of ``target_layer``, else of ``gradcam.target_layer``, else of the last Conv2d."""
        return cls(model, target_layer or config.gradcam.target_layer)

    def setup(self, example: torch.Tensor) -> None:
        self.layer_name, layer = find_target_layer(self.model, self.target_layer, example)
        self.cam = LayerGradCam(self.model, layer)

    def attribute(self, batch: torch.Tensor, classes: torch.Tensor) -> torch.Tensor:
        raw = self.cam.attribute(batch, target=classes, relu_attributions=True)
        if raw.dim() != 4:
            raise InvalidInputError(
                f"Target layer {self.layer_name!r} outputs shape {tuple(raw.shape)}; Grad-CAM needs "
                "a (batch, channels, height, width) feature map, as a Conv2d layer gives."
            )
        return raw[:, 0]

    def details(self) -> dict[str, Any]:
        return {"target_layer": self.layer_name}


def gradcam(
    model: torch.nn.Module,
    images: Any,
    labels: Any = None,
    class_names: Sequence[str] | None = None,
    *,
    target_layer: str | None = None,
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
        Name of the layer to explain (as in ``model.named_modules()``); default the last
        ``Conv2d`` the forward pass runs.
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
        On images of the wrong shape or channel count, labels out of range, no convolutional
        layer without ``target_layer``, or a model that is not a classifier.

    Examples
    --------
    >>> result = gradcam(cnn, images, labels, class_names=["cat", "dog"])  # doctest: +SKIP
    >>> result.deletion_drop > result.random_drop  # doctest: +SKIP
    True
    """
    return attribute_images(
        GradCam(model, target_layer),
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


def find_target_layer(model: torch.nn.Module, name: str | None, example: torch.Tensor) -> tuple[str, torch.nn.Module]:
    """The layer named ``name``, or the last ``Conv2d`` that a forward pass of ``example`` runs."""
    modules = dict(model.named_modules())
    convolutions = [key for key, module in modules.items() if isinstance(module, torch.nn.Conv2d)]
    if name is not None and (not name or name not in modules):
        raise InvalidInputError(
            f"The model has no layer named {name!r}; its Conv2d layers are: {', '.join(convolutions) or 'none'}."
        )
    if name is None and not convolutions:
        raise InvalidInputError(
            "The model has no Conv2d layer; name the layer to explain with target_layer (config gradcam.target_layer)."
        )
    candidates = [name] if name is not None else convolutions
    ran: list[str] = []
    hooks = [modules[key].register_forward_hook(lambda *_, key=key: ran.append(key)) for key in candidates]
    try:
        forward(model, example)
    finally:
        for hook in hooks:
            hook.remove()
    if not ran:
        raise InvalidInputError(
            f"The forward pass never calls layer {candidates[-1]!r}, so Grad-CAM cannot read it "
            "(a model saved with serialization_format='pt2' has no callable layers: log it with "
            "'pickle')."
        )
    logger.info("Grad-CAM target layer: %s.", ran[-1])
    return ran[-1], modules[ran[-1]]

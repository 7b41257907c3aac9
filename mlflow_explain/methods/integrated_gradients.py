"""Integrated Gradients of a PyTorch image classifier, computed with Captum's ``IntegratedGradients`` (no MLflow).

Integrated Gradients (Sundararajan et al., 2017) integrates the gradient of the class's score
along the straight path from a baseline image to the image, times the difference of the two:
the attributions of one image sum to F(image) - F(baseline) ("completeness"), which Captum's
convergence delta checks. The map of a pixel is its attributions summed over the channels, signed;
the figures show it so, red for the class and blue against it, as shap's image plot does. Its
**positive part** is what ranks the pixels (the raw arrays, the class means and the faithfulness
test). The faithfulness test removes whole pixels (every channel) by setting them
to zero, which is the baseline: to first order the score then drops by the summed attribution of
the removed pixels, so the pixels with the largest positive sums are the ones whose removal
drops the probability most. The absolute value would also rank pixels that speak *against* the
class, whose removal raises the score (``benchmarks/image_methods.py`` measures both).
Batching, the shown images and the faithfulness test are :mod:`.image_attribution`'s.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import torch
from captum.attr import IntegratedGradients as CaptumIntegratedGradients

from ..results import IntegratedGradientsResult
from .faithfulness import Fill, blurred
from .image_attribution import ImageAttribution, attribute_images

if TYPE_CHECKING:
    from ..config import ExplainConfig

Baseline = Literal["zero", "blur"]


class IntegratedGradients(ImageAttribution):
    """Integrated Gradients from a zero (or blurred) baseline, ``n_steps`` Gauss-Legendre points.

    Parameters
    ----------
    model : torch.nn.Module
        The classifier.
    n_steps : int, default=32
        Points of the path integral; each costs a forward and backward pass of every image.
    baseline : {"zero", "blur"}, default="zero"
        The path's start: an all-zero input, or a Gaussian-blurred copy of the image.
    internal_batch_size : int, default=64
        Inputs (images x steps) per forward/backward pass, bounding the memory taken on the device.
    """

    result_type = IntegratedGradientsResult

    def __init__(
        self, model: torch.nn.Module, n_steps: int = 32, baseline: Baseline = "zero", internal_batch_size: int = 64
    ):
        super().__init__(model)
        self.integrated_gradients = CaptumIntegratedGradients(model)
        self.n_steps, self.baseline, self.internal_batch_size = n_steps, baseline, internal_batch_size
        self._deltas: list[np.ndarray] = []
        self._gaps: list[np.ndarray] = []

    @classmethod
    def from_config(
        cls, model: torch.nn.Module, config: ExplainConfig, target_layer: str | None = None
    ) -> IntegratedGradients:
        """The method with the options of section ``integrated_gradients`` (``target_layer`` is Grad-CAM's)."""
        options = config.integrated_gradients
        return cls(model, options.n_steps, options.baseline, options.internal_batch_size or config.gradcam.batch_size)

    def setup(self, example: torch.Tensor) -> None:
        self._deltas, self._gaps = [], []

    def attributions(self, batch: torch.Tensor, classes: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Signed attributions (n, C, H, W) of the classes' scores, and Captum's convergence delta (n,).

        The delta is the attributions' sum minus F(image) - F(baseline), in the units of the
        model's output (logits or probabilities); it is kept for the result's completeness figures.
        """
        parts = []
        for start in range(0, len(batch), self.internal_batch_size):  # Captum takes at least one step of each image
            chunk = batch[start : start + self.internal_batch_size]
            attributions, delta = self.integrated_gradients.attribute(
                chunk,
                baselines=blurred(chunk) if self.baseline == "blur" else torch.zeros_like(chunk),
                target=classes[start : start + self.internal_batch_size],
                n_steps=self.n_steps,
                method="gausslegendre",
                internal_batch_size=self.internal_batch_size,
                return_convergence_delta=True,
            )
            parts.append((attributions.detach(), delta.detach()))
        attributions, delta = torch.cat([part[0] for part in parts]), torch.cat([part[1] for part in parts])
        self._deltas.append(delta.abs().cpu().numpy())
        self._gaps.append((attributions.flatten(1).sum(dim=1) - delta).abs().cpu().numpy())
        return attributions, delta

    def attribute(self, batch: torch.Tensor, classes: torch.Tensor) -> torch.Tensor:
        """Signed attributions summed over the channels (n, H, W); the base class keeps their positive part."""
        attributions, _ = self.attributions(batch, classes)
        return attributions.sum(dim=1)

    def details(self) -> dict[str, Any]:
        deltas, gaps = np.concatenate(self._deltas), np.concatenate(self._gaps)
        return {
            "n_steps": self.n_steps,
            "baseline": self.baseline,
            "max_convergence_delta": float(deltas.max()),
            "relative_convergence_delta": float(deltas.sum() / max(gaps.sum(), 1e-12)),
        }


def integrated_gradients(
    model: torch.nn.Module,
    images: Any,
    labels: Any = None,
    class_names: Sequence[str] | None = None,
    *,
    n_steps: int = 32,
    baseline: Baseline = "zero",
    internal_batch_size: int | None = None,
    max_images: int = 32,
    max_rows: int = 1000,
    batch_size: int = 64,
    deletion_fraction: float = 0.2,
    deletion_fill: Fill = "zero",
    random_state: int = 0,
) -> IntegratedGradientsResult:
    """Integrated Gradients maps of the predicted and the true class, their completeness and faithfulness.

    Parameters
    ----------
    model : torch.nn.Module
        A classifier returning one score (logit or probability) per class; it stays on its device.
    images : array or Tensor of shape (n, C, H, W), (n, H, W, C), or (n, H, W) for one channel
        Validation images, prepared as the model expects them.
    labels : array-like of shape (n,), default=None
        True class indices; they add the true-class maps and the misclassified images.
    class_names : sequence of str, default=None
        One name per class (default: the class indices).
    n_steps : int, default=32
        Points of the path integral from the baseline to each image.
    baseline : {"zero", "blur"}, default="zero"
        The path's start: an all-zero input, or a Gaussian-blurred copy of the image.
    internal_batch_size : int, default=None
        Inputs (images x steps) per forward/backward pass; default ``batch_size``.
    max_images, max_rows, batch_size, deletion_fraction, deletion_fill, random_state
        As for :func:`~mlflow_explain.methods.gradcam.gradcam`.

    Returns
    -------
    IntegratedGradientsResult

    Raises
    ------
    InvalidInputError
        On images of the wrong shape or channel count, labels out of range, or a model that is not
        a classifier.

    Examples
    --------
    >>> result = integrated_gradients(cnn, images, labels, n_steps=16)  # doctest: +SKIP
    >>> result.deletion_drop > result.random_drop, result.max_convergence_delta < 0.05  # doctest: +SKIP
    (True, True)
    """
    method = IntegratedGradients(model, n_steps, baseline, internal_batch_size or batch_size)
    return attribute_images(
        method,
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

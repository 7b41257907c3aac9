"""The image engine: Grad-CAM heatmaps of a PyTorch image classifier and their faithfulness (no MLflow)."""

from __future__ import annotations

import dataclasses
import functools
import logging
from collections.abc import Callable, Sequence
from typing import Any

from .engine import ExplainRequest, new_explanation, run_steps
from .errors import InvalidInputError, MissingDependencyError
from .results import Explanation, GradcamResult, Task

logger = logging.getLogger(__name__)


@dataclasses.dataclass
class ImageRequest(ExplainRequest):
    """A PyTorch classifier, its validation images, optional labels and class names, the layer to explain."""

    images: Any
    labels: Any = None
    class_names: Sequence[str] | None = None
    target_layer: str | None = None  # default: gradcam.target_layer, else the last Conv2d


class ImageEngine:
    """Grad-CAM through Captum, in batches on the model's device."""

    def compute(self, request: ImageRequest) -> Explanation:
        """Grad-CAM heatmaps and faithfulness of the request's images; bad input raises ``InvalidInputError``."""
        method = _gradcam_method()
        images = request.images
        if not hasattr(images, "__len__"):
            raise InvalidInputError(
                f"Images must be an array or Tensor of shape (n, channels, height, width), not {type(images).__name__}."
            )
        settings = request.config.gradcam
        task = Task("multiclass", tuple(request.class_names or ()))
        explanation = new_explanation(request, task, [], len(images), extra_packages=("torch", "captum"))
        steps = {}
        if settings.enabled:
            steps["gradcam"] = functools.partial(
                method,
                request.model,
                images,
                request.labels,
                request.class_names,
                target_layer=request.target_layer or settings.target_layer,
                max_images=settings.max_images,
                max_rows=settings.max_rows,
                batch_size=settings.batch_size,
                deletion_fraction=settings.deletion_fraction,
                deletion_fill=settings.deletion_fill,
                random_state=settings.random_state,
            )
        else:
            logger.info("gradcam.enabled is false: no Grad-CAM heatmaps computed.")
        run_steps(explanation, steps, request.config.on_error, passthrough=(InvalidInputError,))
        if explanation.gradcam is not None:
            names = tuple(explanation.gradcam.class_names)
            explanation.task = Task("binary" if len(names) == 2 else "multiclass", names)
        return explanation


def _gradcam_method() -> Callable[..., GradcamResult]:
    """The Grad-CAM function, or a clear error when PyTorch or Captum is missing."""
    try:
        from .methods.gradcam import gradcam
    except ImportError as err:
        raise MissingDependencyError(
            f"Grad-CAM needs PyTorch and Captum ({err.name} is not installed): pip install 'mlflow-explain[torch]'."
        ) from err
    return gradcam

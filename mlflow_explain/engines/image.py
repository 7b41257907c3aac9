"""The image engine: attributions of a PyTorch image classifier (Grad-CAM, Integrated Gradients) and their faithfulness.

No MLflow here. The images are checked, scored and chosen once, in the step ``image_scoring``
(``methods/image_attribution.py``); each method named in ``gradcam.methods`` is then one step,
timed and guarded under its name, that fills the Explanation field of that name, so each method's
time is its own.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib
import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from ..errors import InvalidInputError, MissingDependencyError
from ..results import Explanation, ImageAttributionResult, Task, image_result_types
from ..steps import guarded, timed
from .base import ExplainRequest, new_explanation, run_steps

if TYPE_CHECKING:
    from ..methods.image_attribution import ImageAttribution, PreparedImages

logger = logging.getLogger(__name__)

_SCORING = "image_scoring"  # the step that checks, scores and chooses the images once for every method


@dataclasses.dataclass
class ImageRequest(ExplainRequest):
    """A PyTorch classifier, its validation images, optional labels and class names, Grad-CAM's layer."""

    images: Any
    labels: Any = None
    class_names: Sequence[str] | None = None
    target_layer: str | None = None  # default: gradcam.target_layer, else methods/target_layer.py's choice


class ImageEngine:
    """The image attribution methods of ``gradcam.methods`` through Captum, in batches on the model's device."""

    def compute(self, request: ImageRequest) -> Explanation:
        """Each method's maps and faithfulness on the request's images; bad input raises ``InvalidInputError``."""
        images = request.images
        if not hasattr(images, "__len__"):
            raise InvalidInputError(
                f"Images must be an array or Tensor of shape (n, channels, height, width), not {type(images).__name__}."
            )
        settings = request.config.gradcam
        task = Task("multiclass", tuple(request.class_names or ()))
        explanation = new_explanation(request, task, [], len(images), extra_packages=("torch", "captum"))
        explanation.inputs = "images"
        if not settings.enabled:
            logger.info("gradcam.enabled is false: no image attributions computed.")
            return explanation
        methods = {name: _method_class(name) for name in dict.fromkeys(settings.methods)}
        on_error = request.config.on_error
        with timed(explanation, _SCORING):
            prepared = guarded(explanation, _SCORING, on_error, _prepare, request, passthrough=(InvalidInputError,))
        if prepared is not None:
            steps = {name: functools.partial(_explain, method, request, prepared) for name, method in methods.items()}
            run_steps(explanation, steps, on_error, passthrough=(InvalidInputError,))
            names = tuple(prepared.class_names)
            explanation.task = Task("binary" if len(names) == 2 else "multiclass", names)
        return explanation


def _prepare(request: ImageRequest) -> PreparedImages:
    from ..methods.image_attribution import prepare_images

    settings = request.config.gradcam
    return prepare_images(
        request.model,
        request.images,
        request.labels,
        request.class_names,
        max_images=settings.max_images,
        max_rows=settings.max_rows,
        batch_size=settings.batch_size,
        random_state=settings.random_state,
    )


def _explain(method: type[ImageAttribution], request: ImageRequest, prepared: PreparedImages) -> ImageAttributionResult:
    settings = request.config.gradcam
    return method.from_config(request.model, request.config, request.target_layer).explain(
        prepared,
        batch_size=settings.batch_size,
        deletion_fraction=settings.deletion_fraction,
        deletion_fill=settings.deletion_fill,
        random_state=settings.random_state,
    )


def _method_class(name: str) -> type[ImageAttribution]:
    """The class of method ``name``, registered by ``methods/<name>.py``; a clear error without PyTorch or Captum."""
    try:
        importlib.import_module(f"..methods.{name}", __package__)
    except ImportError as err:
        raise MissingDependencyError(
            f"{image_result_types()[name].title} needs PyTorch and Captum ({err.name} is not installed): "
            "pip install 'mlflow-explain[torch]'."
        ) from err
    from ..methods.image_attribution import ATTRIBUTIONS

    return ATTRIBUTIONS[name]

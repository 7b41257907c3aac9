"""Explain a PyTorch image classifier with Grad-CAM and log it into an MLflow run, as ``explain`` does for tables."""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .api import log_to_run
from .config import ConfigSource, load_config
from .engine import guarded, package_versions, timed
from .errors import InvalidInputError, MissingDependencyError
from .results import Explanation, GradcamResult, Task

logger = logging.getLogger(__name__)


def explain_images(
    model: Any,
    images: Any,
    labels: Any = None,
    class_names: Sequence[str] | None = None,
    target_layer: str | None = None,
    config: ConfigSource = None,
    run_id: str | None = None,
) -> Explanation:
    """Grad-CAM heatmaps of a PyTorch image classifier on validation images, logged into an MLflow run.

    Heatmaps of the predicted and the true class come from Captum's ``LayerGradCam`` on the
    target layer, in batches on the model's device. The run gets the metrics
    ``gradcam/deletion_drop`` and ``gradcam/random_drop`` (drop of the predicted class's
    probability when the most highlighted, or random, pixels are removed) and, under
    ``explain/gradcam/``, a grid per class, the misclassified grid, the per-class mean heatmaps
    and the raw heatmaps as ``.npy``; ``explain/report.html`` gets a Grad-CAM section.

    Parameters
    ----------
    model : torch.nn.Module
        A classifier returning one score (logit or probability) per class.
    images : array or Tensor of shape (n, C, H, W), (n, H, W, C), or (n, H, W) for one channel
        Validation images, prepared as the model expects them.
    labels : array-like of shape (n,), default=None
        True class indices (adds the true-class heatmaps and the misclassified grid).
    class_names : sequence of str, default=None
        One name per model output (default: the class indices).
    target_layer : str, default=None
        Layer to explain, named as in ``model.named_modules()``; default ``gradcam.target_layer``
        from the config, else the last ``Conv2d`` of the forward pass.
    config : path, dict or ExplainConfig, default=None
        Merged over ``configs/default.yaml`` (section ``gradcam``).
    run_id : str, default=None
        Run to log into; default the active run, or a new one.

    Returns
    -------
    Explanation
        With ``explanation.gradcam`` holding the heatmaps and faithfulness figures.

    Raises
    ------
    InvalidInputError
        On images of the wrong shape or channel count, labels out of range, or a model without
        a Conv2d layer and no ``target_layer``.
    MissingDependencyError
        When PyTorch or Captum is not installed (``pip install 'mlflow-explain[torch]'``).

    Examples
    --------
    >>> with mlflow.start_run():  # doctest: +SKIP
    ...     explanation = mlflow_explain.explain_images(cnn, X_val, y_val, class_names=names)
    >>> explanation.gradcam.deletion_drop  # doctest: +SKIP
    0.41
    """
    started = time.perf_counter()
    cfg = load_config(config)
    method = _gradcam_method()
    if not hasattr(images, "__len__"):
        raise InvalidInputError(
            f"Images must be an array or Tensor of shape (n, channels, height, width), not {type(images).__name__}."
        )
    settings = cfg.gradcam
    explanation = Explanation(
        task=Task("multiclass", tuple(class_names or ())),
        feature_names=[],
        n_rows=len(images),
        config=cfg.to_dict(),
        versions=package_versions(model, extra=("torch", "captum")),
        model_type=type(model).__name__,
    )
    if settings.enabled:
        with timed(explanation, "gradcam"):
            compute = functools.partial(
                method,
                target_layer=target_layer or settings.target_layer,
                max_images=settings.max_images,
                max_rows=settings.max_rows,
                batch_size=settings.batch_size,
                deletion_fraction=settings.deletion_fraction,
                deletion_fill=settings.deletion_fill,
                random_state=settings.random_state,
            )
            explanation.gradcam = guarded(
                explanation,
                "gradcam",
                cfg.on_error,
                compute,
                model,
                images,
                labels,
                class_names,
                passthrough=(InvalidInputError,),
            )
    else:
        logger.info("gradcam.enabled is false: no Grad-CAM heatmaps computed.")
    if explanation.gradcam is not None:
        names = tuple(explanation.gradcam.class_names)
        explanation.task = Task("binary" if len(names) == 2 else "multiclass", names)
    log_to_run(explanation, cfg, run_id, started)
    return explanation


def read_images_file(path: str | Path) -> dict[str, Any]:
    """Images, labels and class names from a ``.npz`` file, as keyword arguments of :func:`explain_images`.

    Parameters
    ----------
    path : str or Path
        A ``.npz`` (``numpy.savez``) holding an array ``images`` and optionally ``labels`` and
        ``class_names``.

    Returns
    -------
    dict
        ``images``, ``labels`` (or None) and ``class_names`` (or None).
    """
    try:
        archive = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as err:
        raise InvalidInputError(f"Cannot read images file {path}: {err}.") from err
    if not isinstance(archive, np.lib.npyio.NpzFile) or "images" not in archive.files:
        raise InvalidInputError(
            f"Images file {path} must be a .npz holding an array named 'images' (and optionally "
            "'labels' and 'class_names')."
        )
    with archive:
        return {
            "images": archive["images"],
            "labels": archive["labels"] if "labels" in archive.files else None,
            "class_names": [str(name) for name in archive["class_names"]] if "class_names" in archive.files else None,
        }


def _gradcam_method() -> Callable[..., GradcamResult]:
    """The Grad-CAM function, or a clear error when PyTorch or Captum is missing."""
    try:
        from .methods.gradcam import gradcam
    except ImportError as err:
        raise MissingDependencyError(
            f"Grad-CAM needs PyTorch and Captum ({err.name} is not installed): pip install 'mlflow-explain[torch]'."
        ) from err
    return gradcam

"""Explain a PyTorch image classifier (Grad-CAM, Integrated Gradients) and log it into an MLflow run."""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..config import ConfigSource, load_config
from ..engines.image import ImageEngine, ImageRequest
from ..errors import InvalidInputError
from ..models import is_keras_model
from ..publish.flow import explain_with
from ..results import Explanation


def explain_images(
    model: Any,
    images: Any,
    labels: Any = None,
    class_names: Sequence[str] | None = None,
    target_layer: str | None = None,
    config: ConfigSource = None,
    run_id: str | None = None,
) -> Explanation:
    """Attribution maps of a PyTorch image classifier on validation images, logged into an MLflow run.

    Each method named in ``gradcam.methods`` (``gradcam``: Captum's ``LayerGradCam`` on the target
    layer, the default; ``integrated_gradients``: Captum's ``IntegratedGradients`` from a baseline
    image, section ``integrated_gradients``) maps the predicted and the true class of the same
    images, in batches on the model's device, and runs the same faithfulness test on the same
    random pixels. The run gets, per method, the metrics ``<method>/deletion_drop`` and
    ``<method>/random_drop`` (drop of the predicted class's probability when the most highlighted,
    or random, pixels are removed) and ``<method>/faithfulness`` (their difference, the number
    that compares methods and runs); under ``explain/<method>/`` a grid per class, the
    misclassified grid, the per-class mean heatmaps and the raw maps as ``.npy``; and a section
    in ``explain/report.html`` (with a table comparing the methods when more than one ran).

    Parameters
    ----------
    model : torch.nn.Module or keras.Model
        A classifier returning one score (logit or probability) per class. A Keras 3 model runs on
        the torch backend as a module taking (n, C, H, W) (``engines/keras_torch.KerasImageModule``):
        its channels-last feature maps are read channels-first, and Grad-CAM's default layer is its
        last Conv2D, named by its Keras name.
    images : array or Tensor of shape (n, C, H, W), (n, H, W, C), or (n, H, W) for one channel
        Validation images, prepared as the model expects them (a Keras model's in its own layout).
    labels : array-like of shape (n,), default=None
        True class indices (adds the true-class heatmaps and the misclassified grid).
    class_names : sequence of str, default=None
        One name per model output (default: the class indices).
    target_layer : str, default=None
        Grad-CAM's layer, named as in ``model.named_modules()``; default ``gradcam.target_layer``
        from the config, else a vision transformer's last block's first norm (its tokens read as
        the patch grid, ``gradcam.token_grid``), else the last ``Conv2d`` of the forward pass.
    config : path, dict or ExplainConfig, default=None
        Merged over ``configs/default.yaml`` (sections ``gradcam`` and ``integrated_gradients``).
    run_id : str, default=None
        Run to log into; default the active run, or a new one.

    Returns
    -------
    Explanation
        With ``explanation.gradcam`` and ``explanation.integrated_gradients`` holding each method's
        maps and faithfulness figures (None for a method not run).

    Raises
    ------
    InvalidInputError
        On images of the wrong shape or channel count, labels out of range, a layer whose output
        is no map, or a model with no layer to read and no ``target_layer``.
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
    config = load_config(config)
    if is_keras_model(model):
        model, images, target_layer = _keras_as_torch(model, images, target_layer or config.gradcam.target_layer)
    request = ImageRequest(
        model=model,
        config=config,
        images=images,
        labels=labels,
        class_names=class_names,
        target_layer=target_layer,
    )
    return explain_with(ImageEngine(), request, run_id, started)[0]


def _keras_as_torch(model: Any, images: Any, target_layer: str | None) -> tuple[Any, np.ndarray, str]:
    """A Keras model (torch backend) as a module taking (n, C, H, W), its images so, and Grad-CAM's Keras layer."""
    from ..engines.keras_adapter import TORCH_BACKEND, keras_backend

    backend = keras_backend()
    if backend != TORCH_BACKEND:
        raise InvalidInputError(
            f"Image attributions of a Keras model need its torch backend (KERAS_BACKEND=torch), but Keras runs on "
            f"{backend}; explain it on tables with mlflow_explain.explain (permutation importance, model-agnostic "
            "SHAP)."
        )
    from ..engines.keras_torch import KerasImageModule

    module = KerasImageModule(model)
    if target_layer is not None and target_layer not in module.layer_names():
        raise InvalidInputError(
            f"The Keras model has no layer named {target_layer!r}; its layers are: {', '.join(module.layer_names())}."
        )
    return module, module.channels_first(images), target_layer or module.last_convolution()


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

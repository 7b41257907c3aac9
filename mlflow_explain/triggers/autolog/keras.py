"""Keras 3's ``Model.fit`` under autolog: which fits count, the rows they validated on, how they are explained.

``install`` routes ``keras.Model.fit`` through autolog's handler the moment Keras is imported (a
post-import hook; nothing here imports Keras). ``keras.Model`` inherits ``fit`` from its backend's
trainer, so both are wrapped (``patch.wrap_fit_of(..., inherited=True)``), and so is each subclass
(``Sequential``, ``Functional``, the user's, defined before or after), with a ``fit`` of its own
(``patch.wrap_fit_of_subclasses``). ``mlflow.keras.autolog()`` patches ``keras.Model.fit``, so
whichever is enabled first, MLflow's patch runs inside that subclass wrapper: the model is explained
once MLflow has logged its model, into the run MLflow made for the fit. (Explaining inside MLflow's
patch would put over 100 metrics at step 0 into the run before MLflow links the run's step-0 metrics
to its LoggedModel, which MLflow 3.17's SQL store fails on, leaving the LoggedModel FAILED without
weights.) ``mlflow.tensorflow.autolog()`` patches ``tf.keras.Model.fit``, which under Keras 3 is this
same ``keras.Model``.

The validation rows of a fit: its ``validation_data`` ((x, y) or (x, y, sample_weight) arrays or
tensors), else the rows Keras holds out for ``validation_split`` (the last fraction of ``x`` and
``y``, as Keras's ``train_validation_split`` takes them); one-hot targets become class labels.
Tables (n, features) go through ``explain``, images (n, H, W, C) through ``explain_images``.
"""

from __future__ import annotations

import logging
import math
import sys
from types import ModuleType
from typing import Any

import numpy as np

from ...config import ExplainConfig
from . import patch
from .lightning import explain_module
from .rows import Rows, forget_said, say_no_rows_once

logger = logging.getLogger(__name__)

_FIT_ARGUMENTS = ("x", "y", "batch_size", "epochs", "verbose", "callbacks", "validation_split", "validation_data")


def install() -> None:
    """Route ``keras.Model.fit`` through autolog's handler: now if Keras is imported, else once it is."""
    from mlflow.utils.import_hooks import register_post_import_hook

    forget_said()
    register_post_import_hook(_on_keras_imported, "keras")  # runs at once when already imported


def _on_keras_imported(keras: ModuleType) -> None:
    try:
        patch.wrap_fit_of(keras.Model, inherited=True)
        patch.wrap_fit_of_subclasses(keras.Model)  # Sequential, Functional: outside MLflow's patch of Model.fit
    except Exception:  # never break the user's import of Keras
        logger.warning("mlflow_explain.autolog: could not patch keras.Model.fit.", exc_info=True)


def is_keras_model(obj: Any) -> bool:
    """True for a Keras 3 model; imports nothing."""
    keras = sys.modules.get("keras")
    return keras is not None and isinstance(obj, getattr(keras, "Model", ()))


def fit_rows(model: Any, args: tuple, kwargs: dict, config: ExplainConfig) -> Rows | None:
    """The fit's ``validation_data``, else the rows ``validation_split`` held out; None (said once why) without."""
    arguments = dict(zip(_FIT_ARGUMENTS, args, strict=False)) | kwargs
    validation = arguments.get("validation_data")
    if validation is not None:
        if isinstance(validation, (tuple, list)) and len(validation) in (2, 3):
            return Rows(*(_array(part) for part in validation))
        _say_once(f"validation_data is a {type(validation).__name__}, not an (x, y) or (x, y, sample_weight) tuple")
        return None
    split = arguments.get("validation_split") or 0.0
    x, y = arguments.get("x"), arguments.get("y")
    if split and y is not None and hasattr(x, "shape"):
        start = int(math.floor(len(x) * (1.0 - split)))  # Keras's train_validation_split: the last rows
        weight = arguments.get("sample_weight")
        held_out = len(x) - start
        logger.info("mlflow_explain.autolog: explaining on the last %d rows, held out by validation_split.", held_out)
        return Rows(_array(x)[start:], _array(y)[start:], None if weight is None else weight[start:])
    return None


def _labelled(model: Any, rows: Rows) -> Rows:
    """The rows with one-hot targets as class labels."""
    from ...engines.keras_adapter import labels_of, output_units

    return rows._replace(y=labels_of(rows.y, output_units(model)))


def _array(value: Any) -> Any:
    """A tensor as an array on the CPU; anything else as it is."""
    if hasattr(value, "detach"):
        return value.detach().cpu().numpy()
    return value if value is None or hasattr(value, "shape") else np.asarray(value)


def _say_once(reason: str) -> None:
    say_no_rows_once(
        logger,
        "mlflow_explain.autolog: keras.Model.fit is not explained on its validation rows: %s (give rows with "
        "mlflow_explain.set_validation_data(X, y) or autolog(validation_data=(X, y))). Said once.",
        reason,
    )


def explain_model(model: Any, rows: Rows, config: ExplainConfig, run_id: str, notes: tuple[str, ...] = ()) -> None:
    """Explain a fitted Keras model on its validation rows into run ``run_id``: tables or images."""
    explain_module(model, _labelled(model, rows), config, run_id, notes)

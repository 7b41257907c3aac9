"""Keras 3 models on tabular rows, as the models the tabular engine takes (no MLflow).

What a Keras model predicts is read from the model itself: the width of its last layer and the
activation it ends in (softmax: class probabilities; sigmoid on one unit: the positive class's
probability; linear: a regression, or logits, as the outputs and the target say). How it is
explained depends on the Keras backend:

- torch (``KERAS_BACKEND=torch``): a Keras model is a ``torch.nn.Module``, so it goes through the
  PyTorch adapter (``torch_adapter.torch_estimator``) and gets every PyTorch method, deep SHAP
  included. A chain of Dense, Activation and Dropout layers is rebuilt as torch ``Linear`` and
  activation modules first (``keras_torch``), so DeepLIFT sees each nonlinearity and its values are exact.
- any other backend (jax, tensorflow, numpy): the model only predicts here, through its own
  ``predict``; it gets permutation importance and model-agnostic SHAP, and ``summary.json`` says why.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

import numpy as np
import pandas as pd
from scipy.special import softmax

from ..config import TorchConfig
from ..errors import InvalidInputError
from ..models import PredictOnly, PredictOnlyClassifier, PredictOnlyRegressor

logger = logging.getLogger(__name__)

TORCH_BACKEND = "torch"
_CLASSIFYING = ("softmax", "sigmoid")


def keras_backend() -> str:
    """The backend Keras runs on ("torch", "jax", "tensorflow" or "numpy")."""
    return sys.modules["keras"].backend.backend()


def final_activation(model: Any) -> str:
    """The name of the activation the model's last layer applies ("softmax", "linear"...), or "unknown".

    Unknown for a subclassed model (no symbolic output): its layers are listed in the order its
    ``__init__`` made them, which says nothing of the order its ``call`` applies them.
    """
    keras = sys.modules["keras"]
    if output_units(model) is None:
        return "unknown"
    last = model.layers[-1] if model.layers else None
    if isinstance(last, keras.layers.Softmax):
        return "softmax"
    activation = getattr(last, "activation", None)
    if activation is None:
        return "unknown"
    name = keras.activations.serialize(activation)
    return name if isinstance(name, str) else getattr(activation, "__name__", "unknown")


def output_units(model: Any, rows: np.ndarray | None = None) -> int | None:
    """The width of the model's output: from its output shape, else (a subclassed model) from its output on
    the first of ``rows``; None when neither is at hand."""
    try:
        return int(model.output_shape[-1])
    except (AttributeError, TypeError, ValueError):  # a subclassed model has no symbolic output
        if rows is None:
            return None
        return int(np.shape(model.predict(rows[:1], verbose=0))[-1])


def output_reading(model: Any, config: TorchConfig, units: int) -> tuple[TorchConfig, str]:
    """``config`` with the task and output kind the model's last layer says (where left on auto), and why.

    Softmax makes a classifier of probabilities, sigmoid on one unit a binary classifier of the
    positive class's probability; a linear end is left to the outputs and the target
    (``torch_adapter.infer_output``: a regression, or logits of a classifier).
    """
    activation = final_activation(model)
    if activation == "unknown":
        return config, (
            f"{units} output(s) of a model whose last activation cannot be read (a subclassed model): a regression, "
            "or logits of a classifier, as the outputs and the target say; set torch.output to probabilities if "
            "they are"
        )
    said = f"the last layer has {units} unit(s) and a {activation} activation"
    classifying = activation == "softmax" or (activation == "sigmoid" and units == 1)
    if not classifying:
        return config, f"{said}: a regression, or logits of a classifier, as the outputs and the target say"
    update = {}
    if config.task == "auto":
        update["task"] = "classification"
    if config.output == "auto":
        update["output"] = "probabilities"
    return config.model_copy(update=update), f"{said}: a classifier of probabilities"


def keras_estimator(model: Any, X: Any, y: np.ndarray, config: TorchConfig, backend: str | None = None) -> PredictOnly:
    """A Keras model as a fitted classifier or regressor, explained by its backend's methods.

    Parameters
    ----------
    model : keras.Model
        Takes a float array (n, features) and returns (n,), (n, 1) or (n, k).
    X : DataFrame or ndarray of shape (n_samples, n_features)
        Validation rows.
    y : ndarray of shape (n_samples,)
        Targets (class labels, or one-hot rows of them).
    config : TorchConfig
        The ``torch`` section: task, output kind and classes where set, batch size.
    backend : str, default=None
        The Keras backend; None reads it from Keras (a parameter so that the choice can be tested).

    Returns
    -------
    PredictOnly
        On the torch backend the PyTorch adapter (deep SHAP, permutation importance); on any other
        a predict-only model (model-agnostic SHAP, permutation importance). ``details`` says which and why.
    """
    backend = backend or keras_backend()
    units = output_units(model, _float_rows(X))
    config, reading = output_reading(model, config, units)
    details = {"library": "keras", "keras_backend": backend, "keras_model": type(model).__name__, "reading": reading}
    if backend == TORCH_BACKEND:
        from .keras_torch import tabular_module
        from .torch_adapter import torch_estimator

        module, how = tabular_module(model, _float_rows(X))
        adapted = torch_estimator(module, X, y, config)
        adapted.details.update(details, torch_module=how)
        return adapted
    return _predicting_model(model, units, y, config, details)


def _predicting_model(model: Any, units: int, y: np.ndarray, config: TorchConfig, details: dict) -> PredictOnly:
    """The model through its own ``predict``: a classifier when its last layer or the config says so."""
    outputs = KerasOutputs(model, config.batch_size, probabilities=config.output == "probabilities")
    note = (
        f"Keras runs on the {details['keras_backend']} backend, where a model is no torch module: permutation "
        "importance and model-agnostic SHAP only (deep SHAP, Grad-CAM and Integrated Gradients need "
        "KERAS_BACKEND=torch)"
    )
    logger.info("mlflow_explain: %s.", note)
    details = {**details, "methods": note}
    if config.task == "regression" or (config.task == "auto" and units == 1 and not _binary(y)):
        adapted: PredictOnly = PredictOnlyRegressor(outputs)
    else:
        adapted = PredictOnlyClassifier(outputs, _classes(config, units, y))
    adapted.details = details
    return adapted


class KerasOutputs:
    """A Keras model's ``predict`` as scikit-learn's scorers call it: ``predict`` and ``predict_proba``.

    Parameters
    ----------
    keras_model : keras.Model
        The model.
    batch_size : int
        Rows per ``predict`` batch.
    probabilities : bool
        The outputs are probabilities (else logits, or a regression's prediction).
    """

    def __init__(self, keras_model: Any, batch_size: int, probabilities: bool):
        self.keras_model, self.batch_size, self.probabilities = keras_model, batch_size, probabilities

    def outputs(self, X: Any) -> np.ndarray:
        """The model's outputs on the rows as float64 (n, k)."""
        rows = _float_rows(X)
        outputs = np.asarray(self.keras_model.predict(rows, batch_size=self.batch_size, verbose=0), dtype=float)
        return outputs.reshape(len(rows), -1)

    def predict(self, X: Any) -> np.ndarray:
        outputs = self.outputs(X)
        return outputs[:, 0] if outputs.shape[1] == 1 else outputs

    def predict_proba(self, X: Any) -> np.ndarray:
        outputs = self.outputs(X)
        if outputs.shape[1] == 1:
            positive = outputs[:, 0] if self.probabilities else 1 / (1 + np.exp(-outputs[:, 0]))
            return np.column_stack([1 - positive, positive])
        return outputs if self.probabilities else softmax(outputs, axis=1)


def _classes(config: TorchConfig, n_outputs: int, y: np.ndarray) -> np.ndarray:
    """The class label of each output: ``torch.classes``, else 0..k-1 (two for one output), checked against ``y``."""
    classes = np.asarray(config.classes) if config.classes is not None else np.arange(max(n_outputs, 2))
    unknown = sorted(set(pd.unique(np.asarray(y)).tolist()) - set(classes.tolist()), key=str)
    if unknown:
        raise InvalidInputError(
            f"The target holds label(s) {unknown[:5]} but the Keras model's {n_outputs} output(s) are classes "
            f"{classes.tolist()}; set torch.classes to the labels in output order."
        )
    return classes


def _binary(y: np.ndarray) -> bool:
    """At most two labels, whole numbers (a float target of a regression is not binary)."""
    labels = pd.unique(np.asarray(y))
    try:
        return len(labels) <= 2 and bool(np.all(np.asarray(labels, dtype=float) % 1 == 0))
    except (TypeError, ValueError):  # text labels
        return len(labels) <= 2


def _float_rows(X: Any) -> np.ndarray:
    rows = X.to_numpy() if isinstance(X, pd.DataFrame) else np.asarray(X)
    if rows.dtype.kind not in "biuf":
        raise InvalidInputError(
            f"A Keras model takes a float array (n, features), but the validation rows hold {rows.dtype} values; "
            "encode them before the model."
        )
    return rows.astype(np.float32)


def labels_of(y: Any, n_outputs: int | None) -> Any:
    """Class labels from one-hot targets (n, k) (categorical cross-entropy) of a model with k outputs (None: not
    known, any k); else ``y``."""
    if y is None or np.ndim(y) != 2 or np.shape(y)[1] < 2 or n_outputs not in (None, np.shape(y)[1]):
        return y
    array = np.asarray(y)
    if not (np.isin(array, (0, 1)).all() and (array.sum(axis=1) == 1).all()):
        return y
    return array.argmax(axis=1)

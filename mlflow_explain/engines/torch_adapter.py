"""PyTorch modules on tabular rows, as the scikit-learn-style models every tabular method takes (no MLflow).

:func:`torch_estimator` reads what a ``torch.nn.Module`` taking a float tensor (n, features) predicts
from its outputs on the validation rows and from the target (:func:`infer_output`), and wraps it in a
:class:`TorchClassifier` or :class:`TorchRegressor`: ``predict``, ``predict_proba`` and
``decision_function`` (logits) as scikit-learn's scorers and SHAP's explainers call them, evaluated
in batches of ``torch.batch_size`` rows on the module's device, in eval mode and under
``torch.inference_mode()``, the module's own modes restored after every call. The module is the
adapter's ``torch_module``; ``output_kind`` says what its outputs are ("logits", "probabilities"
or "regression").

The adapter is a :class:`~mlflow_explain.models.PredictOnly` model, built by ``api.explain`` (not
``models.as_estimator``), and the tabular engine explains it like any other model: permutation
importance stacks the permuted copies into large batches (a memory budget), each predicted here in
device batches, so one engine batch is a handful of forward passes over every copy in it.
"""

from __future__ import annotations

import copy
import logging
from typing import Any, Literal

import numpy as np
import pandas as pd
import torch
from scipy.special import expit, softmax
from sklearn.base import ClassifierMixin, RegressorMixin
from sklearn.utils.metaestimators import available_if

from ..config import TorchConfig
from ..errors import InvalidInputError
from ..methods.torch_modules import evaluation_mode, module_device, module_dtype
from ..models import PredictOnly

logger = logging.getLogger(__name__)

OutputKind = Literal["logits", "probabilities", "regression"]

# Outputs whose every row lies in [0, 1] and sums to 1 within this are taken for probabilities.
_SUM_TOLERANCE = 1e-4


def forward_rows(
    module: torch.nn.Module, rows: np.ndarray, batch_size: int, device: torch.device, dtype: torch.dtype
) -> np.ndarray:
    """The module's outputs on ``rows`` (n, features): float64 of shape (n, k), or (n,) for a 1-D output.

    Batches of ``batch_size`` rows go to ``device`` as ``dtype``; the module runs in eval mode
    under ``torch.inference_mode()`` and its modes are restored afterwards.
    """
    parts = []
    with evaluation_mode(module), torch.inference_mode():
        for start in range(0, len(rows), batch_size):
            # A copy in the module's dtype (one pass, the conversion it needs anyway): the module may not write
            # into the caller's rows, which may be read-only (a DataFrame's values).
            batch = torch.tensor(rows[start : start + batch_size], dtype=dtype)
            output = module(batch.to(device))
            if not isinstance(output, torch.Tensor):
                raise TypeError(f"the forward returned a {type(output).__name__}, not a tensor")
            parts.append(output.detach().to("cpu", torch.float64).numpy())
    if not parts:
        return np.empty((0, 1))
    return np.concatenate(parts)


class TorchModel(PredictOnly):
    """A ``torch.nn.Module`` on tabular rows as a fitted model: batched predictions on ``device``.

    Parameters
    ----------
    model : torch.nn.Module
        Takes a float tensor (n, ``n_features``) and returns (n,), (n, 1) or (n, k).
    n_features : int
        Columns of the rows it takes.
    output_kind : {"logits", "probabilities", "regression"}
        What its outputs are.
    batch_size : int
        Rows per forward pass.
    device : torch.device or str
        Where the forward passes run (the module's own device).
    details : dict
        How the task and outputs were told apart, for summary.json (``models.model_details``).
    classes : ndarray, default=None
        A classifier's class label of each output (one output: [negative, positive]); None for a regressor.
    """

    def __init__(
        self,
        model: torch.nn.Module,
        n_features: int,
        output_kind: OutputKind,
        batch_size: int,
        device: torch.device | str,
        details: dict,
        classes: np.ndarray | None = None,
    ):
        super().__init__(model)
        self.n_features, self.output_kind, self.batch_size = n_features, output_kind, batch_size
        self.device, self.details, self.classes = torch.device(device), details, classes

    @property
    def torch_module(self) -> torch.nn.Module:
        """The module: takes a float tensor (n, features) on ``device``."""
        return self.model

    @property
    def n_features_in_(self) -> int:
        return self.n_features

    @property
    def dtype(self) -> torch.dtype:
        """The floating dtype the module's inputs are given in (that of its parameters)."""
        return module_dtype(self.model)

    def outputs(self, X: Any) -> np.ndarray:
        """The module's outputs on the rows ``X`` (DataFrame, array or tensor) as float64 (n, n_outputs)."""
        outputs = forward_rows(self.model, _as_rows(X), self.batch_size, self.device, self.dtype)
        return outputs.reshape(len(outputs), -1)


class TorchRegressor(RegressorMixin, TorchModel):
    """A module whose one output is the prediction."""

    def predict(self, X: Any) -> np.ndarray:
        return self.outputs(X)[:, 0]


class TorchClassifier(ClassifierMixin, TorchModel):
    """A module whose outputs are the logits or probabilities of ``classes``; one output is the positive
    class's (``classes[1]``) logit or probability."""

    @property
    def classes_(self) -> np.ndarray:
        return self.classes

    def predict(self, X: Any) -> np.ndarray:
        return self.classes.take(np.argmax(_two_columns(self.outputs(X), self.output_kind), axis=1))

    def predict_proba(self, X: Any) -> np.ndarray:
        outputs = self.outputs(X)
        if self.output_kind == "probabilities":
            return _two_columns(outputs, self.output_kind)
        if outputs.shape[1] == 1:
            positive = expit(outputs[:, 0])
            return np.column_stack([1 - positive, positive])
        return softmax(outputs, axis=1)

    @available_if(lambda self: self.output_kind == "logits")
    def decision_function(self, X: Any) -> np.ndarray:
        """Logits as scikit-learn gives margins: the positive class's log-odds (n,) for two classes, else (n, k)."""
        outputs = self.outputs(X)
        if outputs.shape[1] == 1:
            return outputs[:, 0]
        return outputs[:, 1] - outputs[:, 0] if outputs.shape[1] == 2 else outputs


def _two_columns(outputs: np.ndarray, output_kind: OutputKind) -> np.ndarray:
    """One output (a logit or probability of the positive class) as two columns whose argmax is the class."""
    if outputs.shape[1] != 1:
        return outputs
    positive = outputs[:, 0]
    return np.column_stack([-positive, positive] if output_kind == "logits" else [1 - positive, positive])


def _as_rows(X: Any) -> np.ndarray:
    if isinstance(X, pd.DataFrame):
        return X.to_numpy()
    if isinstance(X, torch.Tensor):
        return X.detach().cpu().numpy()
    return np.asarray(X)


def torch_estimator(module: torch.nn.Module, X: Any, y: np.ndarray, config: TorchConfig | None = None) -> TorchModel:
    """``module`` as a fitted classifier or regressor, its task and outputs read from its outputs on ``X`` and ``y``.

    Parameters
    ----------
    module : torch.nn.Module
        Takes a float tensor (n, features) and returns (n,), (n, 1) or (n, k); it is left in the
        mode (train or eval) it came in.
    X : DataFrame, ndarray or tensor of shape (n_samples, n_features)
        Validation rows (numeric columns), in the module's column order.
    y : ndarray of shape (n_samples,)
        Targets.
    config : TorchConfig, default=None
        The task, output kind, class labels, batch size and device when set (default: inferred).

    Returns
    -------
    TorchClassifier or TorchRegressor
        ``details`` says what was inferred and why.

    Raises
    ------
    InvalidInputError
        When the module cannot take the rows, its outputs cannot be read, or they do not fit the
        target or the config; the message names the expected shapes.
    """
    config = config or TorchConfig()
    rows = _numeric_rows(X)
    module, device = _on_device(module, config.device)
    dtype = module_dtype(module)
    outputs = _probe(module, rows, config.batch_size, device, dtype)
    kind, classes, reason = infer_output(outputs, y, config)
    logger.info("mlflow_explain: the %s module: %s", type(module).__name__, reason)
    details = {
        "library": "torch",
        "output_kind": kind,
        "n_outputs": outputs.shape[1],
        "reason": reason,
        "device": str(device),
        "dtype": str(dtype).removeprefix("torch."),
        "batch_size": config.batch_size,
    }
    arguments = (module, rows.shape[1], kind, config.batch_size, device, details)
    return TorchRegressor(*arguments) if classes is None else TorchClassifier(*arguments, classes=classes)


def _numeric_rows(X: Any) -> np.ndarray:
    if isinstance(X, pd.DataFrame):
        text = [str(name) for name, dtype in X.dtypes.items() if not pd.api.types.is_numeric_dtype(dtype)]
        if text:
            raise InvalidInputError(
                f"A PyTorch module takes a float tensor (n, features), but column(s) {', '.join(text[:5])} "
                "of the validation data are not numeric; encode them before the module, or explain a Pipeline."
            )
    rows = _as_rows(X)
    if rows.dtype.kind not in "biuf":
        raise InvalidInputError(
            f"A PyTorch module takes a float tensor (n, features), but the validation rows hold {rows.dtype} values."
        )
    return rows


def _on_device(module: torch.nn.Module, device: str | None) -> tuple[torch.nn.Module, torch.device]:
    """The module and the device it runs on: its own, or a copy of it on the configured ``device``."""
    own = module_device(module)
    if device is None:
        return module, own
    try:
        wanted = torch.device(device)
        if wanted == own:
            return module, own
        logger.info("mlflow_explain: predicting on a copy of the module on %s (torch.device).", wanted)
        return copy.deepcopy(module).to(wanted), wanted
    except (RuntimeError, AssertionError) as err:  # an unknown or absent device
        raise InvalidInputError(f"torch.device {device!r} cannot take the module: {err}") from err


def _probe(
    module: torch.nn.Module, rows: np.ndarray, batch_size: int, device: torch.device, dtype: torch.dtype
) -> np.ndarray:
    """The module's outputs on every validation row as (n, k), or the sentence saying why it has none."""
    n_rows, n_features = rows.shape
    takes = f"take a float tensor (n, {n_features}) of the validation data's {n_features} feature columns"
    try:
        outputs = forward_rows(module, rows, batch_size, device, dtype)
    except Exception as err:
        shape = (min(n_rows, batch_size), n_features)
        first = (str(err).splitlines() or [type(err).__name__])[0][:300]
        raise InvalidInputError(
            f"The {type(module).__name__} module fails on a float tensor of shape {shape} (rows, features): "
            f"{first}; it must {takes}{_first_layer_hint(module, n_features)}."
        ) from err
    if outputs.ndim > 2 or len(outputs) != n_rows or outputs.size == 0:
        raise InvalidInputError(
            f"The {type(module).__name__} module returns shape {tuple(outputs.shape)} for {n_rows} rows; it must "
            f"{takes} and return (n,), (n, 1) or (n, k), one row of outputs per row."
        )
    return outputs.reshape(n_rows, -1)


def _first_layer_hint(module: torch.nn.Module, n_features: int) -> str:
    """ ", and its first Linear layer takes 30 features" when that layer's width differs from the data's."""
    first = next((sub for sub in module.modules() if isinstance(sub, torch.nn.Linear)), None)
    if first is None or first.in_features == n_features:
        return ""
    return f", but its first Linear layer takes {first.in_features} features"


def infer_output(outputs: np.ndarray, y: np.ndarray, config: TorchConfig) -> tuple[OutputKind, np.ndarray | None, str]:
    """What the module's outputs are, from their shape and values and the target: (kind, classes, why).

    k outputs and class labels make a classifier of k classes (labels 0..k-1, or the target's k
    labels sorted, or ``config.classes``), its outputs probabilities when every row lies in [0, 1]
    and sums to 1, else logits. One output and a binary target make a binary classifier whose
    output is the positive class's logit (or, when configured, probability); one output and any
    other target make a regressor. ``config.task`` and ``config.output`` decide where set.

    Parameters
    ----------
    outputs : ndarray of shape (n_samples, n_outputs)
        The module's outputs on the validation rows.
    y : ndarray of shape (n_samples,)
        Targets.
    config : TorchConfig

    Returns
    -------
    (str, ndarray or None, str)
        "logits", "probabilities" or "regression"; the class labels of a classifier; the reason.

    Raises
    ------
    InvalidInputError
        When the outputs cannot be what the target or the config says.
    """
    n_outputs = outputs.shape[1]
    shape = f"(n, {n_outputs})"
    if config.task == "regression" or (config.task == "auto" and n_outputs == 1 and not _binary(y)):
        if n_outputs != 1:
            raise InvalidInputError(
                f"A regressor must return one output per row, (n,) or (n, 1), but the module returns {shape}; "
                "set torch.task to classification if its outputs are classes."
            )
        if config.output != "auto":
            raise InvalidInputError(
                f"torch.output is {config.output!r}, which applies to classifiers, but the module is explained as a "
                "regressor (one output and a target that is not binary); set torch.task to classification or "
                "torch.output to auto."
            )
        why = "torch.task is regression" if config.task == "regression" else "one output and a non-binary target"
        return "regression", None, f"{why}: a regressor"
    classes, labelled = _classes(n_outputs, y, config.classes)
    kind, evidence = _output_kind(outputs, config.output)
    return kind, classes, f"{n_outputs} output(s) {evidence}: {kind} of classes {classes.tolist()} ({labelled})"


def _binary(y: np.ndarray) -> bool:
    """At most two distinct labels, none of them a number with a fraction (a float target is a regression's)."""
    labels = pd.unique(y)
    return len(labels) <= 2 and not (_numeric(labels) and not _integral(labels))


def _numeric(labels: np.ndarray) -> bool:
    return all(isinstance(v, (bool, int, float, np.bool_, np.number)) for v in labels)


def _integral(labels: np.ndarray) -> bool:
    return _numeric(labels) and bool(np.all(np.asarray(labels, dtype=float) % 1 == 0))


def _classes(n_outputs: int, y: np.ndarray, configured: list | None) -> tuple[np.ndarray, str]:
    """The class label of each output (two for one output: negative, positive) and where they come from."""
    n_classes = max(n_outputs, 2)
    outputs = "one output (the positive class's)" if n_outputs == 1 else f"{n_outputs} outputs"
    labels = np.array(sorted(pd.unique(y).tolist(), key=_label_order))
    shown = ", ".join(repr(v) for v in labels[:5].tolist()) + (", ..." if len(labels) > 5 else "")
    if configured is not None:
        if len(configured) != n_classes:
            raise InvalidInputError(
                f"torch.classes names {len(configured)} labels but the module returns {outputs}, "
                f"so it must name {n_classes}."
            )
        return np.asarray(configured), "torch.classes"
    if len(labels) > n_classes and not (_integral(labels) and n_outputs > 1):
        raise InvalidInputError(
            f"The target holds {len(labels)} labels ({shown}) but the module returns {outputs}, (n, {n_outputs}); "
            f"a classifier of {len(labels)} classes returns (n, {len(labels)})."
        )
    if _integral(labels):
        if n_outputs == 1 and set(labels.tolist()) <= {0, 1}:
            return np.array([0, 1]), "labels 0 and 1"
        if n_outputs > 1 and labels.min() >= 0 and labels.max() < n_outputs:
            return np.arange(n_outputs), f"integer labels 0..{n_outputs - 1} name the outputs"
        if n_outputs > 1:
            raise InvalidInputError(
                f"The target holds label(s) {shown} but the module returns {outputs}, (n, {n_outputs}), "
                f"whose integer labels are 0..{n_outputs - 1}; set torch.classes to name the outputs otherwise."
            )
    if len(labels) == n_classes:
        return labels, "the target's labels, sorted"
    raise InvalidInputError(
        f"The target holds {len(labels)} label(s) ({shown}) but the module returns {outputs}, (n, {n_outputs}), "
        f"so which label is which output cannot be told; set torch.classes to the {n_classes} labels in output order."
    )


def _label_order(value: Any) -> tuple:
    return (0, float(value), "") if _numeric([value]) else (1, 0.0, str(value))


def _output_kind(outputs: np.ndarray, configured: str) -> tuple[OutputKind, str]:
    """Logits or probabilities, and the evidence: configured, or read from the values on the validation rows."""
    in_range = bool(np.all((outputs >= -1e-6) & (outputs <= 1 + 1e-6)))
    n_outputs = outputs.shape[1]
    sums = outputs.sum(axis=1)
    summing = n_outputs > 1 and in_range and bool(np.all(np.abs(sums - 1) <= _SUM_TOLERANCE))
    if configured == "probabilities" and not (summing or (n_outputs == 1 and in_range)):
        what = "lie in [0, 1]" if n_outputs == 1 else "lie in [0, 1] and sum to 1 on every row"
        seen = ("values", outputs) if n_outputs == 1 else ("row sums", sums)
        raise InvalidInputError(
            f"torch.output is 'probabilities' but the module's outputs on the validation rows do not {what} "
            f"({seen[0]} {seen[1].min():.3g} to {seen[1].max():.3g}); set torch.output to logits or auto."
        )
    if configured != "auto":
        return configured, f"(torch.output is {configured})"
    if summing:
        return "probabilities", "in [0, 1] summing to 1 on every validation row"
    if n_outputs == 1:
        return "logits", "(one output: taken for a logit; set torch.output to probabilities if it is one)"
    return "logits", f"not summing to 1 on every validation row (sums {sums.min():.3g} to {sums.max():.3g})"

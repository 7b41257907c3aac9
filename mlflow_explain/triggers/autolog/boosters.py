"""Native boosters under autolog: ``xgboost.train``, ``lightgbm.train`` and CatBoost's ``fit``.

``install`` routes them through autolog's handler the moment their library is imported (a
post-import hook; nothing here imports them): the functions ``xgboost.train`` and
``lightgbm.train`` (as the package exposes them, so ``xgb.train`` is the same; XGBoost's and
LightGBM's scikit-learn models call their own reference, which is left alone: those fits are
explained as estimators) and ``fit`` of ``CatBoost``, ``CatBoostClassifier`` and
``CatBoostRegressor`` (not scikit-learn estimators). A training function is handed to the
handler as the ``fit`` of a :class:`NativeTraining`, which keeps the booster it returns.

The rest is what autolog asks of a fit kind: the model to explain (the booster, or the CatBoost
model) and the validation rows of the fit: the last of ``evals`` not named "train" (else the
last; a ``DMatrix``'s rows read back, missing values as NaN), the last of ``valid_sets`` that is
not the training set (an ``lgb.Dataset``'s raw rows, referenced before training since LightGBM
frees them once the Dataset is constructed), the last of CatBoost's ``eval_set``; with their row
weights, if any. A fit without readable validation rows is said once per reason, at WARNING.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import logging
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pandas as pd

from ...config import ExplainConfig
from . import patch, rules
from .rows import Rows, forget_said, say_no_rows_once

logger = logging.getLogger(__name__)

_TRAINING_FUNCTIONS = {"xgboost": "xgboost.training", "lightgbm": "lightgbm.engine"}  # package: module defining train
_CATBOOST_CLASSES = ("CatBoost", "CatBoostClassifier", "CatBoostRegressor")
_TRAIN_SET_NAMES = frozenset({"train", "training"})


@dataclasses.dataclass
class NativeTraining:
    """One call of ``xgboost.train`` or ``lightgbm.train`` as autolog sees a fit.

    ``validation`` reads the rows of the call's validation set (referenced before training), or
    gives the reason there are none; ``booster`` is the booster the call returned.
    """

    function: str  # 'xgboost.train'
    validation: Callable[[], Rows | str]
    booster: Any = None


def install() -> None:
    """Route ``xgboost.train``, ``lightgbm.train`` and CatBoost's ``fit`` through autolog's handler, once imported."""
    from mlflow.utils.import_hooks import register_post_import_hook

    forget_said()
    for package in _TRAINING_FUNCTIONS:
        register_post_import_hook(_on_booster_package_imported, package)  # runs at once when already imported
    register_post_import_hook(_on_catboost_imported, "catboost")


def _on_booster_package_imported(package: ModuleType) -> None:
    try:
        patch.wrap_function_of(package, "train", functools.partial(_training_wrapper, package.__name__))
    except Exception:  # never break the user's import of the library
        logger.warning("mlflow_explain.autolog: could not patch %s.train.", package.__name__, exc_info=True)


def _on_catboost_imported(catboost: ModuleType) -> None:
    try:
        for name in _CATBOOST_CLASSES:
            patch.wrap_fit_of(getattr(catboost, name))
    except Exception:
        logger.warning("mlflow_explain.autolog: could not patch CatBoost's fit.", exc_info=True)


def _training_wrapper(package: str, function: Callable) -> Callable:
    """``function`` (``package``'s ``train``, or MLflow's patch of it) handed to autolog's handler as a fit."""

    @functools.wraps(function)
    def train(*args: Any, **kwargs: Any) -> Any:
        training = NativeTraining(f"{package}.train", _validation_of_call(package, args, kwargs))
        caller = rules.outside_mlflow_patch(sys._getframe(1), args[0] if args else None)
        return patch.route(functools.partial(_train, function), training, args, kwargs, caller)

    return train


def _train(function: Callable, training: NativeTraining, *args: Any, **kwargs: Any) -> Any:
    training.booster = function(*args, **kwargs)
    return training.booster


def is_native_fit(obj: Any) -> bool:
    """True for what autolog's handler gets from a native booster's training: a NativeTraining, a CatBoost model."""
    from ...boosters import booster_library  # imports scikit-learn: not at autolog's import

    return isinstance(obj, NativeTraining) or booster_library(obj) == "catboost"


def model_to_explain(fitted: Any) -> Any:
    """The booster a training returned, or the CatBoost model itself."""
    return fitted.booster if isinstance(fitted, NativeTraining) else fitted


def fit_rows(fitted: Any, args: tuple, kwargs: dict, config: ExplainConfig) -> Rows | None:
    """The fit's validation rows; None (said once at WARNING, with the reason) when it has none to read."""
    if isinstance(fitted, NativeTraining):
        read, name = fitted.validation, fitted.function
    else:
        read, name = functools.partial(_catboost_eval_rows, fitted, args, kwargs), f"{type(fitted).__name__}.fit"
    try:
        rows = read()
    except Exception as err:
        logger.debug("mlflow_explain.autolog: could not read the validation set of %s.", name, exc_info=True)
        rows = _unreadable(err)
    if not isinstance(rows, str):
        return rows
    if not config.validation.path:
        _say_once(f"{name} {rows} and no validation data set")
    return None


def _say_once(reason: str) -> None:
    say_no_rows_once(
        logger,
        "mlflow_explain.autolog: not explained: %s (give rows with mlflow_explain.set_validation_data(X, y) "
        "or autolog(validation_data=(X, y))). Said once.",
        reason,
    )


def _validation_of_call(package: str, args: tuple, kwargs: dict) -> Callable[[], Rows | str]:
    """What reads the validation rows of a call of ``package``'s ``train``, or why there are none; never raises.

    Only references are taken now (the rows are read after training, if at all), but taken before
    training: LightGBM frees a Dataset's raw rows when it constructs it.
    """
    try:
        train = sys.modules[_TRAINING_FUNCTIONS[package]].train
        arguments = inspect.signature(train).bind_partial(*args, **kwargs).arguments
        if package == "xgboost":
            return functools.partial(_xgboost_eval_rows, arguments.get("evals"))
        return _lightgbm_valid_rows(arguments.get("valid_sets"), arguments.get("valid_names"), arguments["train_set"])
    except Exception as err:
        logger.debug("mlflow_explain.autolog: could not find the validation set of %s.train.", package, exc_info=True)
        return functools.partial(_unreadable, err)


def _unreadable(err: Exception) -> str:
    return f"with a validation set that could not be read ({type(err).__name__}: {err})"


def _xgboost_eval_rows(evals: Any) -> Rows | str:
    """The last DMatrix of ``evals`` not named 'train' (else the last) as (frame or array, labels)."""
    if not evals:
        return "without evals"
    matrix = next((data for data, name in reversed(evals) if name not in _TRAIN_SET_NAMES), evals[-1][0])
    if isinstance(matrix, sys.modules["xgboost"].QuantileDMatrix):
        return "with a QuantileDMatrix in evals, which keeps its rows only as histogram bins"
    stored = matrix.get_data().tocoo()
    X = np.full(stored.shape, np.nan, dtype=np.float32)  # entries not stored are XGBoost's missing values
    X[stored.row, stored.col] = stored.data
    return Rows(_named(X, matrix.feature_names), _labels(matrix.get_label()), _weights(matrix.get_weight()))


def _lightgbm_valid_rows(valid_sets: Any, valid_names: Any, train_set: Any) -> Callable[[], Rows | str]:
    """What reads the last of ``valid_sets`` that is not the training set (else the last): its raw rows, labels."""
    if not valid_sets:
        return functools.partial(str, "without valid_sets")
    names = list(valid_names) if valid_names else [None] * len(valid_sets)
    pairs = zip(valid_sets, names, strict=True)
    candidates = [data for data, name in pairs if data is not train_set and name not in _TRAIN_SET_NAMES]
    dataset = (candidates or list(valid_sets))[-1]
    if dataset.data is None:
        return functools.partial(
            str,
            "with a valid_sets Dataset whose raw rows LightGBM already freed (constructed with free_raw_data=True; "
            "pass free_raw_data=False)",
        )
    if isinstance(dataset.data, (str, Path)):
        return functools.partial(str, "with a valid_sets Dataset read from a file")
    label = dataset.label if dataset.label is not None else dataset.get_label()
    weight = dataset.weight
    names = dataset.feature_name if isinstance(dataset.feature_name, list) else None
    data = dataset.data  # the Dataset's own reference is dropped when LightGBM constructs it
    return lambda: Rows(_named(data, names), _labels(np.asarray(label)), _weights(weight))


def _catboost_eval_rows(model: Any, args: tuple, kwargs: dict) -> Rows | str:
    """The last (X, y) pair or Pool of CatBoost's ``eval_set``."""
    eval_set = inspect.signature(type(model).fit).bind_partial(model, *args, **kwargs).arguments.get("eval_set")
    if isinstance(eval_set, list):
        eval_set = eval_set[-1] if eval_set else None
    if eval_set is None:
        return "without eval_set"
    if isinstance(eval_set, tuple):
        return Rows(eval_set[0], eval_set[1])
    X = _named(np.asarray(eval_set.get_features()), eval_set.get_feature_names())
    return Rows(X, eval_set.get_label(), _weights(eval_set.get_weight()))


def _named(X: Any, feature_names: list[str] | None) -> Any:
    """An array as a frame under ``feature_names`` (when given); anything else as it is."""
    if feature_names is None or not isinstance(X, np.ndarray):
        return X
    return pd.DataFrame(X, columns=list(feature_names))


def _weights(weight: Any) -> np.ndarray | None:
    """A validation set's row weights; None when it has none (XGBoost: empty; CatBoost: all ones)."""
    if weight is None:
        return None
    weight = np.asarray(weight, dtype=float)
    return None if weight.size == 0 or np.all(weight == 1) else weight


def _labels(y: np.ndarray) -> np.ndarray:
    """Float labels that are whole numbers (how XGBoost and LightGBM store class labels) as integers."""
    y = np.asarray(y)
    if y.dtype.kind == "f" and np.all(np.isfinite(y)) and np.all(y == np.round(y)):
        return y.astype(np.int64)
    return y

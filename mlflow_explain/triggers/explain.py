"""The explicit entry point: explain a fitted model on validation data and log it to MLflow."""

from __future__ import annotations

import time
from collections.abc import Sequence
from functools import partial
from typing import Any

from ..boosters import booster_estimator, booster_library
from ..class_names import ClassNames, with_class_names
from ..config import ConfigSource, ExplainConfig, load_config
from ..data import ValidationData, load_validation_data
from ..engines.tabular import TabularEngine, TabularRequest
from ..models import as_estimator, check_model, detect_task, is_keras_model, is_torch_module
from ..publish.flow import explain_with
from ..results import Explanation
from ..text import frame_model, takes_texts


def explain(
    model: Any,
    X: Any = None,
    y: Any = None,
    *,
    target: str | None = None,
    sample_weight: Any = None,
    config: ConfigSource = None,
    run_id: str | None = None,
    class_names: ClassNames = None,
    log_explainer: bool | None = None,
) -> Explanation:
    """Explain a fitted model on validation data and log everything into an MLflow run.

    Parameters
    ----------
    model : fitted estimator, torch.nn.Module, keras.Model, or any object with ``predict``
        A scikit-learn estimator or Pipeline, or an XGBoost / LightGBM scikit-learn model; a native
        booster (``xgboost.Booster``, ``lightgbm.Booster``, a CatBoost model: its task from its
        objective, its SHAP values from the library's own TreeSHAP, see ``boosters.py``); a PyTorch
        module taking a float tensor (n, features), its task read from its outputs and the target
        (the ``torch`` config section); a Keras 3 model, its task read from its last layer (on the
        torch backend explained as a PyTorch module, deep SHAP included; on another backend by
        permutation importance and model-agnostic SHAP, see ``engines/keras_adapter.py``); any other
        object that only predicts (``predict``, and ``predict_proba`` for a classifier) is explained
        model-agnostically (see ``models.as_estimator``).
    X : pandas or polars DataFrame, array, tensor, or path to a CSV/Parquet file, default=None
        Validation rows; None reads ``validation.path`` from the config.
    y : array-like or tensor, default=None
        Targets, 2-D (rows x outputs) for a multi-output regressor; or name the target column of ``X``
        with ``target``.
    target : str, default=None
        Name of the target column inside ``X`` (default ``validation.target``).
    sample_weight : array-like, default=None
        Row weights for the permutation scorers.
    config : path, dict or ExplainConfig, default=None
        Merged over ``configs/default.yaml``.
    run_id : str, default=None
        Run to log into; default the active run, or a new one.
    class_names : sequence of str, or mapping of label to str, default=None
        Names of a classifier's classes when its labels are codes (0, 1, 2): one per class in the
        model's class order (``classes_``), or ``{label: name}``. Used in the metric keys
        (``shap_mean_abs.<name>/<feature>``), ``shap_values.parquet``, the plots and the report.
    log_explainer : bool, default=None
        Also log the model as an explainer model that serves SHAP values
        (:func:`mlflow_explain.log_explainer`, background drawn from these rows) into the run; None
        reads ``serving.log_explainer``.

    Returns
    -------
    Explanation
        Every result, with its status ("ok", "partial" or "failed").

    Raises
    ------
    InvalidInputError
        When the model or the data cannot be explained; the message names the problem.
    """
    if log_explainer is not None:
        config = load_config(config, {"serving": {"log_explainer": log_explainer}})
    return explain_logged(
        model, X, y, target=target, sample_weight=sample_weight, config=config, run_id=run_id, class_names=class_names
    )[0]


def explain_logged(
    model: Any,
    X: Any = None,
    y: Any = None,
    *,
    target: str | None = None,
    sample_weight: Any = None,
    config: ConfigSource = None,
    run_id: str | None = None,
    input_names: list[str] | None = None,
    class_names: ClassNames = None,
    notes: Sequence[str] = (),
) -> tuple[Explanation, list[str]]:
    """``explain()``, also returning the paths of the files it logged (relative to ``logging.artifact_dir``).

    Parameters and errors are those of ``explain()``, and ``input_names``: the model's input columns in
    order when the model does not record them itself (a logged model's signature), and ``notes``: sentences
    on what the caller decided (autolog's light explanation of a sweep's trial), kept in ``summary.json``'s
    warnings. The list is empty when nothing reached MLflow.
    """
    started = time.perf_counter()
    cfg = load_config(config)
    check_model(model)
    if booster_library(model) is not None:  # its task from its objective; its column names checked on the data
        model = booster_estimator(model)
    if is_keras_model(model):  # one-hot targets (categorical cross-entropy) as class labels
        from ..engines.keras_adapter import labels_of, output_units

        y = labels_of(y, output_units(model))
    data = load_validation_data(
        model, X, y, target=target, sample_weight=sample_weight, config=cfg.validation, input_names=input_names
    )
    data.notes[:0] = notes
    model = _adapted(model, data, cfg)
    task = with_class_names(detect_task(model, data.y, data.target_names), class_names)
    request = TabularRequest(model=model, config=cfg, data=data, task=task)
    also_log = ("serving", partial(_log_explainer, model, data.X, cfg)) if cfg.serving.log_explainer else None
    return explain_with(TabularEngine(), request, run_id, started, also_log)


def _adapted(model: Any, data: ValidationData, cfg: ExplainConfig) -> Any:
    """The model as the tabular engine takes it: a Keras model or a PyTorch module through its adapter (task read
    from its last layer, its outputs on the validation rows and the target), a Pipeline that takes texts as one
    taking their one-column frame (``text.frame_model``), any other model through ``models.as_estimator``."""
    if is_keras_model(model):
        from ..engines.keras_adapter import keras_estimator

        return keras_estimator(model, data.X, data.y, cfg.torch)
    if is_torch_module(model):
        from ..engines.torch_adapter import torch_estimator

        return torch_estimator(model, data.X, data.y, cfg.torch)
    if takes_texts(model):  # its texts are explained as one column
        return frame_model(model, data.feature_names[0])
    return as_estimator(model, data.y)


def _log_explainer(model: Any, X: Any, config: ExplainConfig, run_id: str) -> None:
    from ..serving.log_explainer import log_explainer

    log_explainer(model, background=X, name=config.serving.name, config=config, run_id=run_id)

"""The post-training hook: explain each model the user trains, right after its ``fit``.

``autolog()`` routes the ``fit`` of every scikit-learn-compatible estimator class, Lightning's
``Trainer.fit`` (``lightning_autolog``) and Keras 3's ``Model.fit`` (``keras``), through ``_on_fit``
(``autolog_patch``). A fit is explained when ``autolog_rules`` say it is the user's training (called
from the user's code; for scikit-learn, a classifier or regressor fitted with a target) and it is not
nested in another wrapped fit on the same thread (a custom estimator's inner model, the explanation's
own fits). The model (a search's ``best_estimator_``, a Trainer's ``LightningModule``, a Keras model)
is explained on the validation rows (``autolog_rows``) into the run the fit belongs to: the active
run, the run MLflow's autologging just made for it, or a new run, made only when there are rows to
explain on. Re-fitting in a run logs the run's next explanation (metric step 1, 2, ...).
Nothing raised while explaining leaves ``fit`` unless the config says ``on_error: raise``; the run
is then tagged ``mlflow_explain.status=failed`` with the error in ``explain/error.txt``.

The patch is hand-made rather than MLflow's ``safe_patch``: gorilla, under ``safe_patch``, keeps
one original per class attribute and each integration wraps that original, so two integrations
patching the same ``fit`` (this one and ``mlflow.sklearn``) replace each other: whichever is
enabled last silently switches the other off, and reverting one puts back the bare ``fit``.
``autolog_patch`` instead wraps whatever ``fit`` is in place, MLflow's patch included, and also
the ``fit`` MLflow keeps aside to restore, so either can be switched on and off in any order.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from types import FrameType
from typing import Any, Literal

import mlflow
from mlflow.exceptions import MlflowException

from ...config import ConfigSource, ExplainConfig, load_config
from ...publish import tracking
from ...steps import one_line
from . import boosters, keras, lightning, patch, rules, spark_ml, sweeps
from .rows import Rows, ValidationRows, as_rows, evaluation_rows

logger = logging.getLogger(__name__)


@dataclasses.dataclass
class _State:
    config: ConfigSource = None
    rows: ValidationRows = dataclasses.field(default_factory=ValidationRows)
    class_names: Any = None
    warned_no_data: bool = False
    said_nested_none: bool = False
    skips_said: set[str] = dataclasses.field(default_factory=set)  # the reasons a fit was not explained, said once


@dataclasses.dataclass(frozen=True)
class _FitKind:
    """What differs between the fits autolog explains: scikit-learn-compatible estimators, Lightning's Trainer."""

    skip_reason: Callable[[Any, tuple, dict], str | None]  # before fit, from the estimator and fit's arguments
    model_to_explain: Callable[[Any, Any], Any | None]  # after fit, from the estimator and what fit returned; None
    # when there is nothing to explain (it says why)
    explained_ones: str  # what fits of this kind are explained, said beside the reason a fit is not
    fit_rows: Callable[[Any, tuple, dict, ExplainConfig], Rows | None]  # the validation rows passed to fit
    explain: Callable[[Any, Rows, ExplainConfig, str, tuple[str, ...]], Any]  # the model on the rows, into a run,
    # with notes for summary.json


_state = _State()
_local = threading.local()  # depth: wrapped fits running on this thread


def autolog(
    validation_data: tuple | None = None,
    config: ConfigSource = None,
    disable: bool = False,
    class_names: Any = None,
    nested: Literal["light", "full", "none"] | None = None,
) -> None:
    """Explain each model the user trains right after its ``fit``, into the run it was trained in.

    A ``fit`` called from the user's code on a classifier or regressor (a Pipeline or search
    ending in one, an XGBoost or LightGBM model) with a target is explained; fits made by
    libraries, nested fits, transformers, clusterers, outlier detectors, fits without a target and
    ``partial_fit`` are left alone. So is a Lightning ``Trainer.fit`` (``lightning.pytorch``, and
    ``pytorch_lightning`` when installed): its module gets permutation importance and SHAP on
    tabular rows, Grad-CAM on images; a Tuner's fits, ``fast_dev_run`` and interrupted fits are
    left alone. Lightning is patched when it is imported, never imported here; so is Keras 3, whose
    ``Model.fit`` is explained on its ``validation_data``, else the rows ``validation_split`` held
    out (beside ``mlflow.keras.autolog()``, in either order). Without validation
    rows nothing is explained and no run is made (a warning says so once).

    Parameters
    ----------
    validation_data : (X, y) or (X, y, sample_weight) tuple, default=None
        Rows to explain on in every run (weighted by ``sample_weight`` in the permutation scores), unless
        ``set_validation_data`` gave rows for the run;
        otherwise the evaluation set passed to ``fit`` (``eval_set``, LightGBM's ``eval_X`` and
        ``eval_y``; a Trainer's ``val_dataloaders``, else its datamodule's ``val_dataloader()``; a Keras
        fit's ``validation_data``, else its ``validation_split`` rows), then ``validation.path`` in the
        config, are used.
    config : path, dict or ExplainConfig, default=None
        Validated now, so a wrong key fails here rather than after training.
    disable : bool, default=False
        Put back the ``fit`` methods as they were (MLflow's autologging patches left in place)
        and stop explaining.
    class_names : sequence of str, or mapping of label to str, default=None
        Names of the classes of classifiers with coded labels, as in ``explain``.
    nested : {"light", "full", "none"}, default=None
        What a fit in a nested run (a sweep's trial) gets: "light", permutation importance only on at
        most ``sweeps.nested_max_rows`` rows; "full", everything; "none", no explanation. None reads
        ``sweeps.nested`` from the config (default "light"). Explain the best model in full with
        ``explain(best_model, X, y, run_id=parent_run_id)``, or by fitting it in the parent run.

    Raises
    ------
    ConfigError
        On a wrong config key or value (``nested`` included).
    InvalidInputError
        When ``validation_data`` is not a tuple of 2 or 3 items.
    """
    if disable:
        patch.uninstall()
        return
    validated = load_config(config, {"sweeps": {"nested": nested}} if nested is not None else None)
    _state.config = validated if nested is not None else config
    _state.rows.every_run = as_rows(validation_data, "autolog(validation_data=...)")
    _state.warned_no_data = _state.said_nested_none = False
    _state.skips_said = set()
    _state.class_names = class_names
    patch.install(_on_fit)
    lightning.install()
    boosters.install()
    keras.install()
    spark_ml.install()


def set_validation_data(X: Any, y: Any = None, sample_weight: Any = None) -> None:
    """Rows to explain the models of the active run on; outside a run, of the next explained run only.

    ``sample_weight`` (one per row) weights the permutation scores, as in ``explain``.
    """
    active = mlflow.active_run()
    _state.rows.set(Rows(X, y, sample_weight), active.info.run_id if active else None)


def _on_fit(original: Callable, estimator: Any, args: tuple, kwargs: dict, caller: FrameType) -> Any:
    """Every wrapped ``fit``: the user's training is explained after it; any other passes straight through.

    The nesting depth stays raised while explaining, so the explanation's own fits pass through too.
    """
    depth = getattr(_local, "depth", 0)
    explain_after = depth == 0 and _is_users_training(estimator, args, kwargs, caller)
    _local.depth = depth + 1
    try:
        if not explain_after:
            return original(estimator, *args, **kwargs)
        started_ms = int(time.time() * 1000)
        fitted = original(estimator, *args, **kwargs)
        _explain_safely(estimator, fitted, args, kwargs, started_ms)
        return fitted
    finally:
        _local.depth = depth


def _is_users_training(estimator: Any, args: tuple, kwargs: dict, caller: FrameType) -> bool:
    try:
        if not rules.called_by_user(caller, estimator):
            return False
        reason = _kind_of(estimator).skip_reason(estimator, args, kwargs)
    except Exception as err:
        logger.debug("mlflow_explain.autolog: could not tell whether to explain this fit.", exc_info=True)
        reason = f"could not tell whether it is a supervised training: {type(err).__name__}: {err}"
    if reason is not None:
        _say_skipped_once(estimator, reason)
    return reason is None


def _say_skipped_once(fitted: Any, reason: str) -> None:
    """A WARNING that ``fitted``'s fit is not explained and why; each reason said once per ``autolog()`` call."""
    if reason in _state.skips_said:
        return
    _state.skips_said.add(reason)
    logger.warning(
        "mlflow_explain.autolog: %s.fit is not explained (%s): %s. Said once for this reason.",
        type(fitted).__name__,
        reason,
        _kind_of(fitted).explained_ones,
    )


def _explain_safely(estimator: Any, fitted: Any, args: tuple, kwargs: dict, started_ms: int) -> None:
    """Explain after fit (``fitted``: what it returned); whatever fails (tracking server included) is logged, never
    raised from fit."""
    config = _within_autolog_budget(load_config(_state.config))
    try:
        with _mlflow_autologging_paused():
            _explain_after_fit(estimator, fitted, args, kwargs, started_ms, config)
    except Exception as err:
        if config.on_error == "raise":
            raise
        logger.warning(
            "mlflow_explain: could not explain %s; training is unaffected: %s", type(estimator).__name__, one_line(err)
        )
        logger.debug("mlflow_explain: could not explain %s:", type(estimator).__name__, exc_info=True)


def _within_autolog_budget(config: ExplainConfig) -> ExplainConfig:
    """``config`` with the explanation's time budget (``budget.explain_s``) set to ``budget.autolog_s``."""
    return config.model_copy(update={"budget": config.budget.model_copy(update={"explain_s": config.budget.autolog_s})})


def _mlflow_autologging_paused() -> contextlib.AbstractContextManager:
    """MLflow's autologging off while explaining: the explanation's predictions and scores are not the user's."""
    from mlflow.utils import autologging_utils

    if autologging_utils._AUTOLOGGING_GLOBALLY_DISABLED:  # already off: leave it off afterwards too
        return contextlib.nullcontext()
    return autologging_utils.disable_autologging()


def _explain_after_fit(
    estimator: Any, fitted: Any, args: tuple, kwargs: dict, started_ms: int, config: ExplainConfig
) -> None:
    kind = _kind_of(estimator)
    model = kind.model_to_explain(estimator, fitted)
    if model is None:
        return
    run_id = _run_of_fit(started_ms)
    plan = sweeps.plan(config, run_id)
    if plan.config is None:
        _say_nested_none_once(model)
        return
    config = plan.config
    try:
        rows = _state.rows.choose(
            run_id, lambda: kind.fit_rows(estimator, args, kwargs, config), config.validation.path
        )
    except Exception as err:  # the rows passed to fit cannot be read (a Lightning loader's batches)
        if run_id is None:  # no run to record it in: logged by _explain_safely
            raise
        _explanation_failed(model, err, run_id, config)
        return
    if rows is None:
        _warn_no_data_once()
        return
    with _new_run_unless(run_id) as run_id:
        _state.rows.bind(run_id)
        logger.info("mlflow_explain: explaining %s into run %s.", type(model).__name__, run_id)
        try:
            kind.explain(model, rows, config, run_id, plan.notes)
        except Exception as err:
            _explanation_failed(model, err, run_id, config)


def _say_nested_none_once(model: Any) -> None:
    if not _state.said_nested_none:
        _state.said_nested_none = True
        logger.info(
            "mlflow_explain.autolog: %s in a nested run is not explained (sweeps.nested=none); fits in top-level "
            "runs still are. Said once.",
            type(model).__name__,
        )


def _explanation_failed(model: Any, err: Exception, run_id: str, config: ExplainConfig) -> None:
    """Raise ``err`` when the config says ``on_error: raise``; else log it and tag run ``run_id`` failed."""
    if config.on_error == "raise":
        raise err
    message = one_line(err)
    logger.warning("mlflow_explain: explaining %s failed; training is unaffected: %s", type(model).__name__, message)
    logger.debug("mlflow_explain: explaining %s failed:", type(model).__name__, exc_info=err)
    trace = "".join(traceback.format_exception(err))
    _record_failure(run_id, f"{message}\n\n{trace.rstrip()}", config.logging.artifact_dir)


def _warn_no_data_once() -> None:
    if not _state.warned_no_data:
        _state.warned_no_data = True
        logger.warning(
            "mlflow_explain.autolog: no validation data (set_validation_data, autolog(validation_data=), "
            "an eval_set, a Keras fit's validation_data or validation_split, a Spark DataFrame for pyspark.ml fits, or "
            "validation.path); models are not explained."
        )


def _record_failure(run_id: str, message: str, artifact_dir: str) -> None:
    try:
        tracking.log_failure(run_id, message, artifact_dir)
    except Exception:
        logger.warning("mlflow_explain: could not record the failure in run %s.", run_id, exc_info=True)


def _run_of_fit(started_ms: int) -> str | None:
    """The run a fit belongs to: the active one, or the one MLflow's autologging made and ended for it; else None."""
    active = mlflow.active_run()
    if active is not None:
        return active.info.run_id
    try:
        last = mlflow.last_active_run()
    except MlflowException:  # the store no longer has it
        return None
    return last.info.run_id if last is not None and last.info.start_time >= started_ms else None


@contextlib.contextmanager
def _new_run_unless(run_id: str | None) -> Iterator[str]:
    """``run_id``; or a new run named ``mlflow_explain``, ended afterwards."""
    if run_id is not None:
        yield run_id
        return
    with mlflow.start_run(run_name="mlflow_explain") as run:
        yield run.info.run_id


def _best_or_estimator(estimator: Any, fitted: Any) -> Any | None:
    model = rules.model_to_explain(estimator)
    if model is None:
        _say_skipped_once(estimator, "a search with refit=False keeps no best estimator")
    return model


def _explain_estimator(model: Any, rows: Rows, config: ExplainConfig, run_id: str, notes: tuple[str, ...]) -> None:
    from ..explain import explain_logged

    explain_logged(
        model,
        rows.X,
        rows.y,
        sample_weight=rows.sample_weight,
        config=config,
        run_id=run_id,
        class_names=_state.class_names,
        notes=notes,
    )


def _trained_module(trainer: Any, fitted: Any) -> Any | None:
    reason = lightning.skip_reason(trainer)
    if reason is not None:
        _say_skipped_once(trainer, reason)
        return None
    return trainer.lightning_module


_ESTIMATOR = _FitKind(
    skip_reason=rules.skip_reason,
    model_to_explain=_best_or_estimator,
    fit_rows=lambda estimator, args, kwargs, config: evaluation_rows(kwargs),
    explain=_explain_estimator,
    explained_ones=(
        "only classifiers and regressors fitted with a target are (a search's best estimator); transformers, "
        "clusterers, outlier detectors, fits without a target, partial_fit and searches with refit=False are left "
        "alone"
    ),
)
_TRAINER = _FitKind(
    skip_reason=lambda trainer, args, kwargs: None,  # known after fit only (lightning.skip_reason)
    model_to_explain=_trained_module,
    fit_rows=lightning.fit_rows,
    explain=lightning.explain_module,
    explained_ones="a Trainer.fit that ran to its end on global rank 0, without fast_dev_run, is",
)

_NATIVE_BOOSTER = _FitKind(  # xgboost.train, lightgbm.train, CatBoost's fit
    skip_reason=lambda fitted, args, kwargs: None,
    model_to_explain=lambda training, fitted: boosters.model_to_explain(training),
    fit_rows=boosters.fit_rows,
    explain=_explain_estimator,
    explained_ones="a booster trained by the user's code, with validation rows, is",
)


_KERAS_MODEL = _FitKind(
    skip_reason=lambda model, args, kwargs: None,
    model_to_explain=lambda model, fitted: model,
    fit_rows=keras.fit_rows,
    explain=keras.explain_model,
    explained_ones="a keras.Model.fit called by the user's code, with validation rows, is",
)


_SPARK_ML = _FitKind(
    skip_reason=spark_ml.skip_reason,
    model_to_explain=spark_ml.model_to_explain,
    fit_rows=lambda estimator, args, kwargs, config: None,  # a pyspark.ml fit takes no validation rows
    explain=spark_ml.explain_model,
    explained_ones="a Pipeline, classifier or regressor (or a search over one) fitted with one param map is",
)


def _kind_of(estimator: Any) -> _FitKind:
    if spark_ml.is_spark_estimator(estimator):
        return _SPARK_ML
    if keras.is_keras_model(estimator):
        return _KERAS_MODEL
    if boosters.is_native_fit(estimator):
        return _NATIVE_BOOSTER
    return _TRAINER if lightning.is_trainer(estimator) else _ESTIMATOR

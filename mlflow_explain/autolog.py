"""The post-training hook: explain every top-level ``fit`` of a scikit-learn-compatible model.

``autolog()`` wraps ``fit`` on scikit-learn's estimators (Pipelines and searches included) and
on the XGBoost and LightGBM scikit-learn wrappers. When a top-level ``fit`` returns, the model
(a search's ``best_estimator_``) is explained on the validation data and logged to the run the
fit belongs to. Fits nested inside another fit, a search or a cross-validation helper do not
trigger. Nothing raised while explaining leaves ``fit`` unless the config says
``on_error: raise``; the run is then tagged ``mlflow_explain.status=failed`` with the error in
``explain/error.txt``.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import logging
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

import mlflow
from mlflow.exceptions import MlflowException

from . import tracking
from .api import explain
from .config import ConfigSource, load_config

logger = logging.getLogger(__name__)

_NESTING_MODULES = ("sklearn.model_selection.", "sklearn.feature_selection.", "sklearn.inspection.")


@dataclasses.dataclass
class _State:
    enabled: bool = False
    config: ConfigSource = None
    validation_data: tuple | None = None
    class_names: Any = None
    originals: dict[type, Callable] = dataclasses.field(default_factory=dict)
    run_data: dict[str | None, tuple] = dataclasses.field(default_factory=dict)
    warned_no_data: bool = False


_state = _State()
_local = threading.local()


def autolog(
    validation_data: tuple | None = None, config: ConfigSource = None, disable: bool = False, class_names: Any = None
) -> None:
    """Explain every model right after its top-level ``fit``, into the run it was trained in.

    Parameters
    ----------
    validation_data : (X, y) tuple, default=None
        Rows to explain on, unless ``set_validation_data`` gave rows for the run; otherwise an
        ``eval_set`` passed to ``fit``, then ``validation.path`` in the config, are used.
    config : path, dict or ExplainConfig, default=None
        Validated now, so a wrong key fails here rather than after training.
    disable : bool, default=False
        Restore the original ``fit`` methods exactly and stop explaining.
    class_names : sequence of str, or mapping of label to str, default=None
        Names of the classes of classifiers with coded labels, as in ``explain``.
    """
    if disable:
        _unpatch()
        return
    load_config(config)
    _state.config, _state.validation_data, _state.warned_no_data = config, validation_data, False
    _state.class_names = class_names
    _patch()
    _state.enabled = True


def set_validation_data(X: Any, y: Any = None) -> None:
    """Rows to explain the models of the current run on (of the next run, when none is active)."""
    active = mlflow.active_run()
    _state.run_data[active.info.run_id if active else None] = (X, y)


def _estimator_classes() -> list[type]:
    """Every class that defines the ``fit`` of a scikit-learn, XGBoost or LightGBM estimator."""
    from sklearn.utils import all_estimators

    classes = [cls for _, cls in all_estimators()]
    for module, names in (
        ("xgboost", ("XGBModel", "XGBClassifier", "XGBRegressor", "XGBRanker")),
        ("lightgbm", ("LGBMModel", "LGBMClassifier", "LGBMRegressor", "LGBMRanker")),
    ):
        imported = sys.modules.get(module)
        if imported is None:
            try:
                imported = __import__(module)
            except ImportError:
                continue
        classes += [getattr(imported, name) for name in names if hasattr(imported, name)]
    owners = [next((base for base in cls.__mro__ if "fit" in base.__dict__), None) for cls in classes]
    return [cls for cls in dict.fromkeys(owners) if cls is not None and inspect.isfunction(cls.__dict__["fit"])]


def _patch() -> None:
    for cls in _estimator_classes():
        if cls not in _state.originals:
            _state.originals[cls] = cls.__dict__["fit"]
            cls.fit = _wrap(cls.__dict__["fit"])


def _unpatch() -> None:
    _state.enabled = False
    for cls, original in _state.originals.items():
        if getattr(cls.__dict__.get("fit"), "_mlflow_explain_original", None) is original:
            cls.fit = original
        else:
            logger.warning("%s.fit was patched again after mlflow_explain.autolog; left as it is.", cls.__name__)
    _state.originals.clear()


def _wrap(original: Callable) -> Callable:
    @functools.wraps(original)
    def fit(self, *args: Any, **kwargs: Any) -> Any:
        if not _state.enabled or getattr(_local, "depth", 0) > 0 or _called_from_meta_routine():
            return original(self, *args, **kwargs)
        started_ms = int(time.time() * 1000)
        _local.depth = 1
        try:
            fitted = original(self, *args, **kwargs)
        finally:
            _local.depth = 0
        _explain_safely(self, kwargs, started_ms)
        return fitted

    fit._mlflow_explain_original = original
    return fit


def _called_from_meta_routine() -> bool:
    """True when a fit runs inside a search or cross-validation, in this thread or a worker thread."""
    frame = sys._getframe(2)
    while frame is not None:
        if frame.f_globals.get("__name__", "").startswith(_NESTING_MODULES):
            return True
        frame = frame.f_back
    return False


def _explain_safely(estimator: Any, fit_kwargs: dict, started_ms: int) -> None:
    """Explain after fit; whatever fails (tracking server included) is logged, never raised from fit."""
    config = load_config(_state.config)
    try:
        _explain_after_fit(estimator, fit_kwargs, started_ms, config)
    except Exception:
        if config.on_error == "raise":
            raise
        logger.warning(
            "mlflow_explain: could not explain %s; training is unaffected.", type(estimator).__name__, exc_info=True
        )


def _explain_after_fit(estimator: Any, fit_kwargs: dict, started_ms: int, config: Any) -> None:
    model = getattr(estimator, "best_estimator_", estimator)
    with _run_of_fit(started_ms) as run_id:
        data = _validation_data(run_id, fit_kwargs, config)
        if data is None:
            return
        try:
            explain(model, data[0], data[1], config=config, run_id=run_id, class_names=_state.class_names)
        except Exception as err:
            if config.on_error == "raise":
                raise
            message = f"{type(err).__name__}: {err}"
            logger.warning(
                "mlflow_explain: explaining %s failed; training is unaffected: %s",
                type(model).__name__,
                message,
                exc_info=True,
            )
            _record_failure(run_id, message, config.logging.artifact_dir)


def _record_failure(run_id: str, message: str, artifact_dir: str) -> None:
    try:
        tracking.log_failure(run_id, message, artifact_dir)
    except Exception:
        logger.warning("mlflow_explain: could not record the failure in run %s.", run_id, exc_info=True)


class _run_of_fit:
    """The run a fit belongs to: the active one, the one MLflow autologging just ended, or a new one."""

    def __init__(self, started_ms: int):
        self.started_ms, self.started_run = started_ms, False

    def __enter__(self) -> str:
        active = mlflow.active_run()
        if active is not None:
            return active.info.run_id
        last = _last_active_run()
        if last is not None and last.info.start_time >= self.started_ms:
            return last.info.run_id
        self.started_run = True
        return mlflow.start_run(run_name="mlflow_explain").info.run_id

    def __exit__(self, *exc_info: Any) -> None:
        if self.started_run:
            mlflow.end_run()


def _last_active_run() -> Any:
    """The run MLflow last started in this process, or None (also when the store no longer has it)."""
    try:
        return mlflow.last_active_run()
    except MlflowException:
        return None


def _validation_data(run_id: str, fit_kwargs: dict, config: Any) -> tuple | None:
    if run_id in _state.run_data or None in _state.run_data:
        return _state.run_data.get(run_id, _state.run_data.get(None))
    if _state.validation_data is not None:
        return _state.validation_data
    eval_sets = [value for key, value in fit_kwargs.items() if key.endswith("eval_set") and value]
    if eval_sets:
        X, y = eval_sets[0][-1][:2]
        return X, y
    if config.validation.path:
        return config.validation.path, None
    if not _state.warned_no_data:
        _state.warned_no_data = True
        logger.warning(
            "mlflow_explain.autolog: no validation data (set_validation_data, autolog(validation_data=), "
            "an eval_set, or validation.path); models are not explained."
        )
    return None

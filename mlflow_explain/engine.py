"""Run the enabled methods on one request and gather everything into an Explanation (no MLflow)."""

from __future__ import annotations

import dataclasses
import functools
import importlib.metadata
import logging
import platform
import time
from collections.abc import Callable
from typing import Any

from . import budget
from .config import ExplainConfig
from .data import ValidationData
from .diagnostics import diagnose
from .methods.permutation import permutation_importance
from .methods.shap import shap_values
from .models import model_name
from .results import Explanation, Task

logger = logging.getLogger(__name__)

_PACKAGES = ("mlflow_explain", "mlflow", "scikit-learn", "shap", "numpy", "pandas", "matplotlib")


@dataclasses.dataclass
class ExplainRequest:
    """One thing to explain: a fitted model, its validation data, its task and the config."""

    model: Any
    data: ValidationData
    task: Task
    config: ExplainConfig


def run(request: ExplainRequest) -> Explanation:
    """Compute every enabled method; a failing method is recorded (or re-raised, per ``on_error``)."""
    explanation = Explanation(
        task=request.task,
        feature_names=request.data.feature_names,
        n_rows=request.data.n_rows,
        config=request.config.to_dict(),
        versions=package_versions(request.model),
        model_type=model_name(request.model),
    )
    methods: dict[str, Callable[[ExplainRequest, Explanation], Any]] = {}
    if request.config.permutation.enabled:
        methods["permutation"] = _permutation
    if request.config.shap.enabled:
        methods["shap"] = _shap
    for name, method in methods.items():
        with timed(explanation, name):
            result = guarded(explanation, name, request.config.on_error, method, request, explanation)
        setattr(explanation, name, result)
    if explanation.permutation is not None or explanation.shap is not None:
        findings = guarded(
            explanation, "diagnostics", request.config.on_error, diagnose, explanation, request.data.frame()
        )
        explanation.diagnostics = findings or []
    return explanation


def guarded(
    explanation: Explanation,
    step: str,
    on_error: str,
    function: Callable,
    *args: Any,
    passthrough: tuple[type[Exception], ...] = (),
) -> Any:
    """Call ``function``; on failure record the error under ``step`` and return None, or re-raise.

    Exceptions of the ``passthrough`` types (such as bad input found by the method) always propagate.
    """
    try:
        return function(*args)
    except passthrough:
        raise
    except Exception as err:
        if on_error == "raise":
            raise
        explanation.errors[step] = f"{type(err).__name__}: {err}"
        logger.warning("mlflow_explain: %s failed: %s", step, explanation.errors[step], exc_info=True)
        return None


class timed:
    """Context manager adding the seconds spent inside it to ``explanation.timings[name]``."""

    def __init__(self, explanation: Explanation, name: str):
        self.explanation, self.name = explanation, name

    def __enter__(self) -> None:
        self.start = time.perf_counter()

    def __exit__(self, *exc_info: Any) -> None:
        elapsed = time.perf_counter() - self.start
        self.explanation.timings[self.name] = self.explanation.timings.get(self.name, 0.0) + elapsed


def package_versions(model: Any, extra: tuple[str, ...] = ()) -> dict[str, str]:
    """Versions of Python, of the packages that shape the results (and ``extra``), and of the model's library."""
    names = list(_PACKAGES) + list(extra)
    library = type(model).__module__.split(".")[0]
    if library in ("xgboost", "lightgbm", "catboost", "torch"):
        names.append(library)
    versions = {"python": platform.python_version()}
    for name in names:
        version = _installed_version(name)
        if version is not None:
            versions[name] = version
    return versions


@functools.cache
def _installed_version(name: str) -> str | None:
    """The installed version of a distribution, read once per process (a metadata lookup costs milliseconds)."""
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def _note(explanation: Explanation, limits: budget.Limits) -> None:
    if limits.message:
        explanation.warnings.append(limits.message)
        logger.warning("mlflow_explain: %s", limits.message)


def _permutation(request: ExplainRequest, explanation: Explanation):
    cfg, data = request.config.permutation, request.data
    n_repeats, max_samples = cfg.n_repeats, cfg.max_samples
    if cfg.budget_s is not None:
        predict = getattr(request.model, "predict_proba", None) if request.task.is_classification else None
        per_row = budget.seconds_per_row(predict or request.model.predict, data.X, budget.PROBE_ROWS_PERMUTATION)
        rows = budget.rows_of(max_samples, data.n_rows)
        n_units = len(data.feature_names) + len(cfg.feature_groups)
        limits = budget.permutation_limits(per_row, data.n_rows, rows, n_units, n_repeats, cfg.budget_s)
        _note(explanation, limits)
        if limits.message:
            n_repeats, max_samples = limits.repeats, limits.rows
    return permutation_importance(
        request.model,
        data.X,
        data.y,
        scoring=cfg.scoring,
        n_repeats=n_repeats,
        random_state=cfg.random_state,
        max_samples=max_samples,
        sample_weight=data.sample_weight,
        feature_groups=cfg.feature_groups,
        feature_names=data.feature_names,
        n_jobs=cfg.n_jobs,
        memory_budget_mb=cfg.memory_budget_mb,
        split_pipeline=cfg.split_pipeline,
    )


def _shap(request: ExplainRequest, explanation: Explanation):
    cfg = request.config.shap
    max_rows, permutation_max_rows = cfg.max_rows, cfg.permutation_max_rows
    if cfg.budget_s is not None:
        found: dict[str, str] = {}

        def probe(rows: Any) -> None:
            found["algorithm"] = _shap_values(
                request, rows, max_rows=len(rows), permutation_max_rows=len(rows), local_rows=0, check_additivity=False
            ).algorithm

        per_row = budget.seconds_per_row(probe, request.data.X, budget.PROBE_ROWS_SHAP)
        wanted = permutation_max_rows if found["algorithm"] == "permutation" else max_rows
        limits = budget.shap_limits(per_row, min(wanted, request.data.n_rows), cfg.budget_s)
        _note(explanation, limits)
        if limits.message:
            max_rows, permutation_max_rows = min(max_rows, limits.rows), min(permutation_max_rows, limits.rows)
    return _shap_values(request, request.data.X, max_rows=max_rows, permutation_max_rows=permutation_max_rows)


def _shap_values(request: ExplainRequest, X: Any, **overrides: Any):
    """``shap_values`` of ``X`` with the request's model, task and SHAP config, some keys overridden."""
    cfg = request.config.shap
    options = {
        "algorithm": cfg.algorithm,
        "max_rows": cfg.max_rows,
        "background_rows": cfg.background_rows,
        "permutation_max_rows": cfg.permutation_max_rows,
        "local_rows": cfg.local_rows,
        "random_state": cfg.random_state,
        "check_additivity": cfg.check_additivity,
    } | overrides
    return shap_values(request.model, X, request.task, feature_names=request.data.feature_names, **options)

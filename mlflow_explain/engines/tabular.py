"""The local tabular engine: permutation importance and SHAP values of a model on in-memory rows (no MLflow)."""

from __future__ import annotations

import dataclasses
import functools
import logging
from collections.abc import Callable
from typing import Any

from ..config import ExplainConfig, ShapConfig
from ..data import ValidationData
from ..methods.permutation import permutation_importance
from ..methods.shap import MODEL_AGNOSTIC, shap_values
from ..results import Explanation, PermutationResult, ShapResult, TabularResult, Task
from . import budget
from .base import ExplainRequest, new_explanation, run_steps

logger = logging.getLogger(__name__)


@dataclasses.dataclass
class TabularRequest(ExplainRequest):
    """A fitted model, its validation rows and its task (and the config)."""

    data: ValidationData
    task: Task


class TabularEngine:
    """The tabular methods in this process (:data:`TABULAR_STEPS`), each within its time budget when one is set."""

    def compute(self, request: TabularRequest) -> Explanation:
        """Every enabled method on the request's rows; a failing method is recorded (or re-raised, per ``on_error``).

        A method is enabled by its config section (``<method>.enabled``).
        """
        data, config = request.data, request.config
        explanation = new_explanation(request, request.task, data.feature_names, data.n_rows)
        explanation.n_rows_passed = data.n_rows_passed
        explanation.warnings.extend(data.notes)
        steps = {
            name: functools.partial(step, request, explanation)
            for name, step in TABULAR_STEPS.items()
            if enabled(config, name)
        }
        target = (lambda: data.y) if config.diagnostics.leakage else None  # the leakage check needs the target
        return run_steps(explanation, steps, config.on_error, rows=data.frame, target=target)


def enabled(config: ExplainConfig, method: str) -> bool:
    """Whether ``method`` runs: its config section's ``enabled`` (the section is named like the method)."""
    return getattr(config, method).enabled


def _note(explanation: Explanation, limits: budget.Limits) -> None:
    if limits.message:
        explanation.warnings.append(limits.message)
        logger.warning("mlflow_explain: %s", limits.message)


def _permutation(request: TabularRequest, explanation: Explanation) -> PermutationResult:
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


def _shap(request: TabularRequest, explanation: Explanation) -> ShapResult:
    cfg = request.config.shap
    max_rows, permutation_max_rows = cfg.max_rows, cfg.permutation_max_rows
    if cfg.budget_s is not None:
        found: dict[str, str] = {}

        def probe(rows: Any) -> None:
            found["algorithm"] = _shap_values(
                request, rows, max_rows=len(rows), permutation_max_rows=len(rows), local_rows=0, check_additivity=False
            ).algorithm

        per_row = budget.seconds_per_row(probe, request.data.X, budget.PROBE_ROWS_SHAP)
        wanted = permutation_max_rows if found["algorithm"] in MODEL_AGNOSTIC else max_rows
        limits = budget.shap_limits(per_row, min(wanted, request.data.n_rows), cfg.budget_s)
        _note(explanation, limits)
        if limits.message:
            max_rows, permutation_max_rows = min(max_rows, limits.rows), min(permutation_max_rows, limits.rows)
    result = _shap_values(request, request.data.X, max_rows=max_rows, permutation_max_rows=permutation_max_rows)
    result.source_rows = request.data.source_rows(result.row_positions)
    result.index_labels = request.data.source_labels(result.row_positions)
    _note_shap_cap(explanation, result, request.data.n_rows, cfg)
    return result


TABULAR_STEPS: dict[str, Callable[[TabularRequest, Explanation], TabularResult]] = {
    "permutation": _permutation,
    "shap": _shap,
}  # each tabular method by name (its result type's ``method``, its config section): (request, explanation) -> result


def _note_shap_cap(explanation: Explanation, result: ShapResult, n_rows: int, cfg: ShapConfig) -> None:
    """Warn when SHAP explained fewer rows than the validation rows, naming the cap that cut them."""
    if result.n_explained >= n_rows:
        return
    if result.algorithm in MODEL_AGNOSTIC and result.n_explained == cfg.permutation_max_rows:
        cap = f"shap.permutation_max_rows={cfg.permutation_max_rows}, the cap of the slow model-agnostic explainer"
    elif result.n_explained == cfg.max_rows:
        cap = f"shap.max_rows={cfg.max_rows}"
    else:
        cap = f"the time budget shap.budget_s={cfg.budget_s}"
    note = (
        f"SHAP values were computed on a seeded sample of {result.n_explained} of the {n_rows} validation rows ({cap})."
    )
    explanation.warnings.append(note)
    logger.warning("mlflow_explain: %s", note)


def _shap_values(request: TabularRequest, X: Any, **overrides: Any) -> ShapResult:
    """``shap_values`` of ``X`` with the request's model, task and SHAP config, some keys overridden."""
    cfg = request.config.shap
    options = {
        "algorithm": cfg.algorithm,
        "max_rows": cfg.max_rows,
        "background_rows": cfg.background_rows,
        "permutation_max_rows": cfg.permutation_max_rows,
        "exact_max_features": cfg.exact_max_features,
        "local_rows": cfg.local_rows,
        "random_state": cfg.random_state,
        "check_additivity": cfg.check_additivity,
    } | overrides
    return shap_values(request.model, X, request.task, feature_names=request.data.feature_names, **options)

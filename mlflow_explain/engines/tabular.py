"""The local tabular engine: permutation importance and SHAP values of a model on in-memory rows (no MLflow)."""

from __future__ import annotations

import dataclasses
import functools
import logging
import math
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from ..config import ExplainConfig, ShapConfig
from ..data import ValidationData, take_rows
from ..methods.permutation import permutation_importance
from ..methods.shap import MODEL_AGNOSTIC, row_explainer, shap_values
from ..methods.tokens import token_attributions
from ..results import Explanation, PermutationResult, ShapResult, TabularResult, Task, TokenResult
from ..text import takes_texts_column, text_input
from . import budget
from .base import ExplainRequest, new_explanation, run_steps

logger = logging.getLogger(__name__)


@dataclasses.dataclass
class TabularRequest(ExplainRequest):
    """A fitted model, its validation rows and its task (and the config)."""

    data: ValidationData
    task: Task
    planned: dict[str, Planned] = dataclasses.field(default_factory=dict)  # shares of budget.explain_s, by method


class TabularEngine:
    """The tabular methods in this process (:data:`TABULAR_STEPS`), each within its time budget when one is set."""

    def compute(self, request: TabularRequest) -> Explanation:
        """Every enabled method on the request's rows; a failing method is recorded (or re-raised, per ``on_error``).

        A method is enabled by its config section (``<method>.enabled``). Under ``budget.explain_s``
        the methods' costs are estimated first and the budget split between them (:func:`_plan`).
        """
        data, config = request.data, request.config
        explanation = new_explanation(request, request.task, data.feature_names, data.n_rows)
        explanation.n_rows_passed = data.n_rows_passed
        explanation.warnings.extend(data.notes)
        methods = [name for name in TABULAR_STEPS if enabled(config, name) and applies(request, explanation, name)]
        request = dataclasses.replace(request, planned=_plan(request, methods))
        steps = {name: functools.partial(TABULAR_STEPS[name], request, explanation) for name in methods}
        target = (lambda: data.y) if config.diagnostics.leakage else None  # the leakage check needs the target
        return run_steps(explanation, steps, config.on_error, rows=data.frame, target=target)


def enabled(config: ExplainConfig, method: str) -> bool:
    """Whether ``method`` runs: its config section's ``enabled`` (the section is named like the method)."""
    return getattr(config, method).enabled


def has_input(model: Any, method: str) -> bool:
    """Whether ``model`` has the input ``method`` explains: token attributions need a model that reads text."""
    return method != "tokens" or text_input(model) is not None


def applies(request: TabularRequest, explanation: Explanation, method: str) -> bool:
    """Whether ``method`` has something to explain in the model (:func:`has_input`); SHAP of a model whose only
    input is one text column is left to the token attributions (one "text" feature says nothing), which
    ``explanation.warnings`` and the log say."""
    if not has_input(request.model, method):
        return False
    if method == "shap" and takes_texts_column(request.model):
        instead = (
            "the token attributions (tokens) explain it word by word"
            if request.config.tokens.enabled
            else "enable tokens to explain it word by word"
        )
        note = f"SHAP values were not computed: the model's only input is one text column; {instead}."
        explanation.warnings.append(note)
        logger.warning("mlflow_explain: %s", note)
        return False
    return True


@dataclasses.dataclass(frozen=True)
class Estimate:
    """A method's estimated cost in full, from a timed probe, and the rows (and repeats) that fit a budget."""

    wanted_s: float
    limits: Callable[..., budget.Limits]  # (budget_s, budget_name=...) -> Limits


@dataclasses.dataclass(frozen=True)
class Planned:
    """A method's share of the explanation's time budget, with the estimate it was planned from."""

    estimate: Estimate
    seconds: float
    name: str  # the budget as the messages name it


def _plan(request: TabularRequest, methods: list[str]) -> dict[str, Planned]:
    """Each method's share of ``budget.explain_s``, planned from timed probes before any method runs.

    The probes' own time counts against the budget, and ``budget.OTHER_WORK`` of it is left to the
    diagnostics, figures and logging; a method whose probe fails gets no share (its step fails the
    same way and is recorded).
    """
    total_s = request.config.budget.explain_s
    if total_s is None:
        return {}
    started = time.perf_counter()
    estimates = {}
    for name in (name for name in methods if name in ESTIMATES):
        try:
            estimates[name] = ESTIMATES[name](request)
        except Exception:
            logger.debug("mlflow_explain: could not estimate the cost of %s.", name, exc_info=True)
    spent_s = time.perf_counter() - started
    methods_s = total_s * (1 - budget.OTHER_WORK) - spent_s
    seconds = budget.shares({name: estimate.wanted_s for name, estimate in estimates.items()}, methods_s)
    return {
        name: Planned(
            estimate,
            seconds[name],
            f"its {seconds[name]:.1f} s share of the explanation's time budget of {total_s:g} s "
            f"({spent_s:.1f} s of which went to timing the methods, {budget.OTHER_WORK:.0%} is left to the "
            "diagnostics, figures and logging)",
        )
        for name, estimate in estimates.items()
    }


def _limits(request: TabularRequest, method: str) -> budget.Limits | None:
    """The rows (and repeats) ``method`` may use: its own ``budget_s`` or its share of the plan, the smaller."""
    planned, own_s = request.planned.get(method), getattr(request.config, method).budget_s
    if planned is None and own_s is None:
        return None
    estimate = planned.estimate if planned is not None else ESTIMATES[method](request)
    if own_s is not None and (planned is None or own_s <= planned.seconds):
        return estimate.limits(own_s)
    return estimate.limits(planned.seconds, budget_name=planned.name, min_rows=budget.PLANNED_MIN_ROWS)


def _note(explanation: Explanation, limits: budget.Limits | None) -> None:
    if limits is not None and limits.message:
        explanation.warnings.append(limits.message)
        logger.warning("mlflow_explain: %s", limits.message)


def _permutation_estimate(request: TabularRequest) -> Estimate:
    """Permutation importance's cost, from one timed predict call on a few rows."""
    cfg, data = request.config.permutation, request.data
    predict = getattr(request.model, "predict_proba", None) if request.task.is_classification else None
    per_row = budget.seconds_per_row(predict or request.model.predict, data.X, budget.PROBE_ROWS_PERMUTATION)
    rows = budget.rows_of(cfg.max_samples, data.n_rows)
    n_units = len(data.feature_names) + len(cfg.feature_groups)
    limits = functools.partial(budget.permutation_limits, per_row, data.n_rows, rows, n_units, cfg.n_repeats)
    return Estimate(limits(math.inf).estimated_s, limits)


def _permutation(request: TabularRequest, explanation: Explanation) -> PermutationResult:
    cfg, data = request.config.permutation, request.data
    n_repeats, max_samples = cfg.n_repeats, cfg.max_samples
    limits = _limits(request, "permutation")
    _note(explanation, limits)
    if limits is not None and limits.message:
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


def _shap_estimate(request: TabularRequest) -> Estimate:
    """SHAP's cost: building its explainer (timed), then the values of 1, 2, 4... rows (timed) on one core,
    up to ``budget.PROBE_ROWS_SHAP`` rows or ``budget.PROBE_S`` seconds.

    One core, though scikit-learn forests get every core: the workers' start and the other work on
    the machine make their speed-up unknown in advance (faster than planned is within the budget).
    """
    cfg, data = request.config.shap, request.data
    started = time.perf_counter()
    explainer = row_explainer(
        request.model,
        data.X,
        request.task,
        feature_names=data.feature_names,
        algorithm=cfg.algorithm,
        background_rows=cfg.background_rows,
        exact_max_features=cfg.exact_max_features,
        random_state=cfg.random_state,
    )
    built = time.perf_counter()
    probed = 0
    while probed < min(budget.PROBE_ROWS_SHAP, data.n_rows) and time.perf_counter() - built < budget.PROBE_S:
        batch = np.arange(probed, min(2 * probed or 1, budget.PROBE_ROWS_SHAP, data.n_rows))
        explainer.explain(take_rows(data.X, batch))
        probed += len(batch)
    per_row = (time.perf_counter() - built) / probed
    wanted = cfg.permutation_max_rows if explainer.algorithm in MODEL_AGNOSTIC else cfg.max_rows
    limits = functools.partial(budget.shap_limits, per_row, min(wanted, data.n_rows), fixed_s=built - started)
    return Estimate(limits(math.inf).estimated_s, limits)


def _shap(request: TabularRequest, explanation: Explanation) -> ShapResult:
    cfg = request.config.shap
    max_rows, permutation_max_rows = cfg.max_rows, cfg.permutation_max_rows
    limits = _limits(request, "shap")
    _note(explanation, limits)
    if limits is not None and limits.message:
        max_rows, permutation_max_rows = min(max_rows, limits.rows), min(permutation_max_rows, limits.rows)
    result = _shap_values(
        request,
        request.data.X,
        max_rows=max_rows,
        permutation_max_rows=permutation_max_rows,
        time_limit_s=limits.budget_s if "shap" in request.planned else None,
    )
    result.source_rows = request.data.source_rows(result.row_positions)
    result.index_labels = request.data.source_labels(result.row_positions)
    _note_shap_cap(explanation, result, request.data.n_rows, cfg, limits)
    return result


def _tokens(request: TabularRequest, explanation: Explanation) -> TokenResult:
    cfg, data = request.config.tokens, request.data
    result = token_attributions(
        request.model,
        data.frame(),
        request.task,
        algorithm=cfg.algorithm,
        max_texts=cfg.max_texts,
        top_k=cfg.top_k,
        n_permutations=cfg.n_permutations,
        random_state=cfg.random_state,
    )
    if len(result.texts) < data.n_rows:
        note = (
            f"Token attributions were computed on a seeded sample of {len(result.texts)} of the {data.n_rows} "
            f"validation texts (tokens.max_texts={cfg.max_texts})."
        )
        explanation.warnings.append(note)
        logger.warning("mlflow_explain: %s", note)
    result.index_labels = data.source_labels(result.row_positions)
    result.row_positions = data.source_rows(result.row_positions)
    return result


ESTIMATES: dict[str, Callable[[TabularRequest], Estimate]] = {
    "permutation": _permutation_estimate,
    "shap": _shap_estimate,
}  # the cost of each tabular method that a time budget can cut, by name


TABULAR_STEPS: dict[str, Callable[[TabularRequest, Explanation], TabularResult]] = {
    "permutation": _permutation,
    "shap": _shap,
    "tokens": _tokens,
}  # each tabular method by name (its result type's ``method``, its config section): (request, explanation) -> result


def _note_shap_cap(
    explanation: Explanation, result: ShapResult, n_rows: int, cfg: ShapConfig, limits: budget.Limits | None
) -> None:
    """Warn when SHAP explained fewer rows than the validation rows, naming the cap that cut them."""
    if result.n_explained >= n_rows:
        return
    if result.algorithm in MODEL_AGNOSTIC and result.n_explained == cfg.permutation_max_rows:
        cap = f"shap.permutation_max_rows={cfg.permutation_max_rows}, the cap of the slow model-agnostic explainer"
    elif result.n_explained == cfg.max_rows:
        cap = f"shap.max_rows={cfg.max_rows}"
    elif limits is not None and "stopped at the time limit" in result.reason:
        cap = f"TreeSHAP stopped at its time limit of {limits.budget_s:.1f} s, later than estimated"
    else:
        cap = "the time budget" if limits is None or not limits.message else limits.message.split("; ")[0]
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
        "n_jobs": cfg.n_jobs,
    } | overrides
    return shap_values(request.model, X, request.task, feature_names=request.data.feature_names, **options)

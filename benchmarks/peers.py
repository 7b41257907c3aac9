"""Each tool of the benchmark on one case: mlflow_explain and what a user would use instead.

Every function computes one tool's result on the case's model and rows; ``timed`` repeats it and
keeps the median. Nothing here asserts a timing.
"""

from __future__ import annotations

import dataclasses
import statistics
import time
from collections.abc import Callable
from typing import Any

import mlflow
import numpy as np
import pandas as pd
import shap
import sklearn.inspection

import mlflow_explain
from mlflow_explain.methods.permutation import permutation_importance
from mlflow_explain.methods.shap import shap_values
from mlflow_explain.models import detect_task, raw_column_origins, split_pipeline
from mlflow_explain.results import ShapResult
from mlflow_explain.triggers.evaluator import ExplainEvaluator

from .cases import Case


@dataclasses.dataclass
class Timing:
    """Median seconds over ``repeats`` runs and the last run's result (or why the tool could not run)."""

    seconds: float | None
    repeats: int
    result: Any = None
    failure: str | None = None


def timed(function: Callable[[], Any], repeats: int) -> Timing:
    """Run ``function`` ``repeats`` times; a tool that raises is reported with its error, not timed."""
    times, result = [], None
    for _ in range(repeats):
        started = time.perf_counter()
        try:
            result = function()
        except Exception as err:  # a peer that cannot handle the case is a finding, not a crash
            return Timing(None, repeats, failure=f"{type(err).__name__}: {str(err).splitlines()[0][:160]}")
        times.append(time.perf_counter() - started)
    return Timing(statistics.median(times), repeats, result)


# Permutation importance --------------------------------------------------------------------------


def ours_permutation(case: Case, n_repeats: int, n_jobs: int = 1):
    """mlflow_explain's permutation importance (primary scorer: R^2 or accuracy)."""
    return permutation_importance(case.model, case.X, case.y, n_repeats=n_repeats, random_state=0, n_jobs=n_jobs)


def sklearn_permutation(case: Case, n_repeats: int):
    """``sklearn.inspection.permutation_importance`` with the same scorer, seed and repeats."""
    return sklearn.inspection.permutation_importance(case.model, case.X, case.y, n_repeats=n_repeats, random_state=0)


def eli5_permutation(case: Case, n_repeats: int):
    """ELI5's ``PermutationImportance`` on the fitted model (``cv="prefit"``, the model's own score)."""
    from eli5.sklearn import PermutationImportance

    return PermutationImportance(case.model, n_iter=n_repeats, random_state=0, cv="prefit").fit(case.X, case.y)


def importance_gap(ours: Any, reference: Any) -> float:
    """Largest absolute difference between our importances and scikit-learn's, over features and repeats."""
    return float(np.max(np.abs(ours.importances[ours.primary_scorer] - reference.importances)))


def limit_rows(case: Case, n_repeats: int) -> pd.DataFrame:
    """All the rows the permutations make the model predict: one copy per feature and repeat, plus the baseline."""
    copies = case.X.shape[1] * n_repeats + 1
    return pd.concat([case.X] * copies, ignore_index=True)


def limit_predict(case: Case, rows: pd.DataFrame) -> np.ndarray:
    """The physical limit: one predict call over every row the permutations need."""
    return case.model.predict(rows)


# SHAP ---------------------------------------------------------------------------------------------


def ours_shap(case: Case, n_rows: int) -> ShapResult:
    """mlflow_explain's SHAP values of ``n_rows`` validation rows (its default exact explainer)."""
    task = detect_task(case.model, case.y)
    return shap_values(case.model, case.X, task, feature_names=list(case.X.columns), max_rows=n_rows)


def shap_direct(case: Case, ours: ShapResult) -> np.ndarray:
    """The shap library's best explainer called directly on the same rows (and background).

    Trees: ``TreeExplainer(model).shap_values``; linear models: ``LinearExplainer`` with the same
    background rows; a Pipeline: TreeExplainer on its final step over the transformed rows (values
    per transformed column, as a user calling shap gets them). Shape (rows, columns, explained outputs).
    """
    rows = case.X.iloc[ours.row_positions]
    preprocessor, final = split_pipeline(case.model)
    if preprocessor is not None:
        return _as_3d(shap.TreeExplainer(final).shap_values(preprocessor.transform(rows)))
    if case.family == "linear":
        return _as_3d(shap.LinearExplainer(final, _background(case.X, ours.n_background)).shap_values(rows))
    return _as_3d(shap.TreeExplainer(final).shap_values(rows))


def shap_gap(case: Case, ours: ShapResult, direct: np.ndarray) -> float:
    """Largest absolute difference between our values and the shap library's, per raw column.

    A Pipeline's values from shap are summed onto the raw column each transformed column comes
    from; binary margins are compared on the positive class, the one output shap explains.
    """
    preprocessor, _ = split_pipeline(case.model)
    if preprocessor is not None:
        origins = raw_column_origins(preprocessor, case.X.iloc[ours.row_positions[:200]], list(case.X.columns))
        direct = np.stack([direct[:, origins == j].sum(axis=1) for j in range(case.X.shape[1])], axis=1)
    explained = ours.values[:, :, -direct.shape[2] :]
    return float(np.max(np.abs(explained - direct)))


def _background(X: pd.DataFrame, n_background: int) -> pd.DataFrame:
    """The background rows ``shap_values`` draws: explained-row order first, then the background sample."""
    rng = np.random.RandomState(0)
    rng.permutation(len(X))
    return X.iloc[np.sort(rng.permutation(len(X))[:n_background])]


def _as_3d(values: Any) -> np.ndarray:
    if isinstance(values, list):
        return np.stack(values, axis=-1)
    values = np.asarray(values)
    return values[:, :, None] if values.ndim == 2 else values


# MLflow ---------------------------------------------------------------------------------------------


def log_model(case: Case) -> str:
    """Log the case's model with mlflow.sklearn and return its URI."""
    with mlflow.start_run(run_name="benchmark model"):
        return mlflow.sklearn.log_model(case.model, name="model", serialization_format="cloudpickle").model_uri


def mlflow_evaluate(model_uri: str, case: Case, rows: pd.DataFrame, evaluators: Any, config: dict) -> list[str]:
    """One ``mlflow.models.evaluate`` call on ``rows`` (features and target) in a new run; its artifact names."""
    data = rows.assign(target=case.y[rows.index.to_numpy()])
    with mlflow.start_run(run_name="benchmark evaluate"):
        result = mlflow.models.evaluate(
            model_uri,
            data,
            targets="target",
            model_type=case.model_type,
            evaluators=evaluators,
            evaluator_config=config,
        )
    return sorted(result.artifacts)


def shap_cost(with_shap: Timing, without: Timing) -> Timing:
    """MLflow's SHAP explainability alone: evaluate with it minus evaluate without it."""
    if with_shap.seconds is None or without.seconds is None:
        return Timing(None, with_shap.repeats, failure=with_shap.failure or without.failure)
    if not any(name.startswith("shap") for name in with_shap.result):
        return Timing(None, with_shap.repeats, failure="MLflow logged no SHAP artifact (it skipped explainability)")
    return Timing(max(with_shap.seconds - without.seconds, 1e-9), with_shap.repeats)


def mlflow_default_config(n_rows: int, explainability: bool) -> dict:
    """The default evaluator's config with its SHAP explainability on or off, on ``n_rows`` rows."""
    return {"explainability_nsamples": n_rows, "log_model_explainability": explainability}


def plugin_evaluate(
    model_uri: str, case: Case, rows: pd.DataFrame, config: dict, repeats: int
) -> tuple[Timing, Timing]:
    """The explain plugin through ``mlflow.models.evaluate``: the whole call, and the plugin's own part of it.

    The plugin's own part is the wall time of ``ExplainEvaluator.evaluate`` (SHAP, figures, report,
    logging), measured by wrapping that method here; the rest of the call is MLflow's (loading the
    model, the dataset, the run). Each is the median over ``repeats`` calls.
    """
    own: list[float] = []
    original = ExplainEvaluator.evaluate

    def evaluate(self: ExplainEvaluator, *args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return original(self, *args, **kwargs)
        finally:
            own.append(time.perf_counter() - started)

    ExplainEvaluator.evaluate = evaluate
    try:
        whole = timed(lambda: mlflow_evaluate(model_uri, case, rows, ["explain"], config), repeats)
    finally:
        ExplainEvaluator.evaluate = original
    if whole.seconds is None or not own:
        return whole, Timing(None, repeats, failure=whole.failure or "the explain evaluator did not run")
    return whole, Timing(statistics.median(own), repeats)


def plugin_config(n_rows: int) -> dict:
    """The explain evaluator's config with SHAP only (permutation importance off), on ``n_rows`` rows."""
    return {"explain": {"permutation": {"enabled": False}, "shap": {"max_rows": n_rows}}}


def whole_explain(case: Case, n_rows: int, n_repeats: int) -> tuple[float, float]:
    """(wall seconds of ``mlflow_explain.explain`` with logging, seconds of the two methods' compute)."""
    config = {"shap": {"max_rows": n_rows}, "permutation": {"n_repeats": n_repeats}}
    with mlflow.start_run(run_name="benchmark explain"):  # creating and ending the run is not explain()'s
        started = time.perf_counter()
        explanation = mlflow_explain.explain(case.model, case.X, case.y, config=config)
        wall = time.perf_counter() - started
    return wall, explanation.timings["permutation"] + explanation.timings["shap"]

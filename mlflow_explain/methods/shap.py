"""SHAP values with the fastest exact explainer the model allows, reported per raw column.

Tree ensembles get ``TreeExplainer`` (scikit-learn's over every core, ``tree_chunks.py``; the
reason states the measured time) and linear models ``LinearExplainer`` (both exact); native
boosters (``boosters.py``: ``xgb.Booster``, ``lgb.Booster``, CatBoost models) and LightGBM's
scikit-learn models their library's own multithreaded TreeSHAP; PyTorch networks and
scikit-learn MLPs DeepLIFT-SHAP (``deep_shap.py``: fast and additive, the values of shap's
``DeepExplainer``, which approximate Shapley values). In a scikit-learn
Pipeline whose preprocessing maps each output column to one raw column (verified, see
``models.raw_column_origins``), such a final estimator is explained on the transformed rows and the
values of the columns a raw column expanded into are summed back onto it, so they stay additive.

Any other model is explained model-agnostically on fewer rows, with a warning: the whole model
(a whole Pipeline) on its raw columns, each raw column masked with the values of background rows,
so every evaluated row is a real combination of raw values (masking one-hot columns one by one
would build rows no encoder outputs, such as two categories set at once). Up to
``exact_max_features`` raw columns the Shapley values are exact (shap's ``ExactExplainer`` over the
background rows); above, shap's sampled ``PermutationExplainer``, seeded. Which explainer ran, and
why, is part of the result.
"""

from __future__ import annotations

import contextlib
import logging
import time
import warnings
from collections.abc import Iterator
from functools import partial
from importlib.util import find_spec
from typing import Any

import numpy as np
import pandas as pd
import shap
from sklearn.base import is_classifier
from sklearn.linear_model import GammaRegressor, PoissonRegressor, TweedieRegressor
from sklearn.pipeline import Pipeline
from sklearn.svm import LinearSVC, LinearSVR

from ..boosters import BoosterModel, split_contributions
from ..data import take_columns, take_rows
from ..models import (
    PredictOnly,
    dense,
    model_name,
    model_outputs,
    origin_check_takes,
    output_names,
    raw_column_origins,
    split_pipeline,
)
from ..results import ShapResult, Task
from .deep_shap import deep_shap_values, module_outputs
from .pipeline_split import structural_problem
from .sklearn_mlp import mlp_module, mlp_problem
from .tree_chunks import tree_shap_values

logger = logging.getLogger(__name__)

MODEL_AGNOSTIC = ("permutation", "exact")  # the explainers that evaluate the model on masked raw rows

_ORIGIN_CHECK_ROWS = 200
_NONLINEAR_LINK_MODELS = (PoissonRegressor, GammaRegressor, TweedieRegressor)
_EXACT_MAX_COLUMNS = 20  # 2^20 coalitions per row; also the bound of the config's shap.exact_max_features


def shap_values(
    model: Any,
    X: pd.DataFrame | np.ndarray,
    task: Task,
    *,
    feature_names: list[str],
    algorithm: str = "auto",
    max_rows: int = 2000,
    background_rows: int = 100,
    permutation_max_rows: int = 200,
    exact_max_features: int = 10,
    local_rows: int = 3,
    random_state: int = 0,
    check_additivity: bool = True,
    background: pd.DataFrame | np.ndarray | None = None,
    n_jobs: int = 1,
    time_limit_s: float | None = None,
    warn_model_agnostic: bool = True,
) -> ShapResult:
    """SHAP values of a seeded sample of rows of ``X``, one per raw feature and model output.

    Parameters
    ----------
    model : fitted estimator or Pipeline
    X : DataFrame or ndarray of shape (n_samples, n_features)
        Validation rows in the layout the model expects.
    task : Task
        Regression, binary or multiclass, with the class labels.
    feature_names : list of str
        Names of the columns of ``X``.
    algorithm : {"auto", "tree", "linear", "deep", "permutation", "exact"}, default="auto"
        "auto" takes the first of deep, tree, linear, model-agnostic that fits the model: "deep" for a
        PyTorch model (one with a ``torch_module``) or a scikit-learn MLP; "exact" and "permutation"
        are the model-agnostic explainers of the raw columns.
    max_rows, background_rows, permutation_max_rows : int
        Rows explained, background rows, and rows explained by the slow model-agnostic explainers.
    exact_max_features : int
        "auto" explains a model model-agnostically with exact Shapley values up to this many raw
        columns, with the sampled permutation explainer above.
    local_rows : int
        Rows (a seeded choice among the explained ones) marked for local explanations.
    random_state : int
        Seed of every sample, of the permutation explainer's permutations and of the
        expected-gradients points (when a network falls back to them).
    check_additivity : bool
        Measure the largest gap between values + base value and the model's own output.
    background : DataFrame or ndarray, default=None
        Background rows in the layout of ``X``; default a seeded sample of ``background_rows`` rows of ``X``.
    n_jobs : int, default=1
        Worker processes for shap's TreeSHAP of scikit-learn tree ensembles (-1: all cores); the same values.
    time_limit_s : float, default=None
        Seconds this call may take: shap's TreeSHAP of a scikit-learn ensemble stops at it, between
        chunks of rows, keeping the rows done (a seeded random sample of the rows; the reason says so).
    warn_model_agnostic : bool, default=True
        Say at WARNING that the slow model-agnostic path runs; a caller that says it in its own words passes False.

    Returns
    -------
    ShapResult
    """
    deadline = None if time_limit_s is None else time.perf_counter() + time_limit_s
    rng = np.random.RandomState(random_state)
    order, drawn = _draw(rng, X.shape[0], background_rows)
    explained = np.sort(order[:max_rows])
    target, to_raw, pipeline_note = _explained_model(
        model, X, order, explained, drawn if background is None else None, feature_names
    )
    target, to_raw, chosen = _chosen(
        model,
        target,
        to_raw,
        task,
        algorithm,
        pipeline_note,
        len(feature_names),
        exact_max_features,
        random_state,
        n_jobs,
        deadline,
    )
    slow = chosen.name in MODEL_AGNOSTIC
    positions = np.sort(order[:permutation_max_rows]) if slow else explained
    if slow and warn_model_agnostic:
        logger.warning("SHAP: slow model-agnostic path on %d rows: %s", len(positions), chosen.reason)
    raw_rows = take_rows(X, positions)
    rows = _estimator_rows(to_raw, chosen, raw_rows, positions)
    if chosen.name != "tree":  # TreeSHAP needs no background
        background = to_raw.background(take_rows(X, drawn) if background is None else background)
    values, base, space = _explain(chosen, target, rows, background, task)
    if isinstance(chosen, _TreeChoice) and len(chosen.done) < len(positions):  # stopped at the time limit
        done = chosen.done
        positions, raw_rows, rows = positions[done], take_rows(raw_rows, done), take_rows(rows, done)
    error = _additivity_error(chosen.outputs, target, rows, task, space, values, base) if check_additivity else None
    return ShapResult(
        values=to_raw.sum_back(values),
        base_values=base,
        data=_frame(raw_rows, feature_names),
        feature_names=list(feature_names),
        output_names=output_names(task),
        output_space=space,
        algorithm=chosen.name,
        reason=chosen.reason,
        row_positions=positions,
        n_background=0 if chosen.name == "tree" else background.shape[0],
        max_additivity_error=error,
        local_positions=np.sort(rng.permutation(len(positions))[:local_rows]),
    )


class _RawColumns:
    """Maps a Pipeline's transformed columns back to raw columns (identity without one).

    Keeps the rows the preprocessing already transformed (by their positions in the validation
    rows, and the background rows), so that they are not transformed a second time.
    """

    def __init__(
        self,
        preprocessor: Any = None,
        origins: np.ndarray | None = None,
        n_raw: int = 0,
        done: tuple[np.ndarray, np.ndarray, np.ndarray | None] | None = None,
    ):
        self.preprocessor, self.origins, self.n_raw = preprocessor, origins, n_raw
        self.done_positions, self.done_rows, self.done_background = done or (np.empty(0, dtype=int), None, None)

    def rows(self, X: Any, positions: np.ndarray) -> Any:
        """The rows ``X`` (at ``positions`` of the validation rows) as the explained estimator takes them."""
        if self.preprocessor is None:
            return X
        if self.done_rows is not None and np.isin(positions, self.done_positions).all():
            return self.done_rows[np.searchsorted(self.done_positions, positions)]
        return dense(self.preprocessor.transform(X))

    def background(self, X: Any) -> Any:
        """The background rows as the explained estimator takes them."""
        if self.preprocessor is None:
            return X
        return self.done_background if self.done_background is not None else dense(self.preprocessor.transform(X))

    def sum_back(self, values: np.ndarray) -> np.ndarray:
        if self.origins is None:
            return values
        membership = np.zeros((len(self.origins), self.n_raw))
        membership[np.arange(len(self.origins)), self.origins] = 1.0
        return np.einsum("ntk,tr->nrk", values, membership)


def _explained_model(
    model: Any, X: Any, order: np.ndarray, explained: np.ndarray, drawn: np.ndarray | None, names: list[str]
) -> tuple[Any, _RawColumns, str]:
    """The estimator to explain, how its columns map to raw ones, and a note on the choice.

    A Pipeline's preprocessing is checked on a seeded sample of rows (``models.raw_column_origins``).
    When its steps are known to transform each row on its own, the explained rows, the background
    rows (positions ``drawn``, if any), the sample and its shuffled copies go through one transform call.
    """
    preprocessor, final = split_pipeline(model)
    if preprocessor is None:
        return final, _RawColumns(), ""
    check = np.sort(order[:_ORIGIN_CHECK_ROWS])
    sample = take_rows(X, check)
    done = None
    try:
        if structural_problem(preprocessor, exact=True) is None:
            done, transformed = _transform_once(preprocessor, X, explained, drawn, check)
            origins = raw_column_origins(preprocessor, sample, names, transformed=transformed)
        else:
            origins = raw_column_origins(preprocessor, sample, names)
    except ValueError as why:
        return model, _RawColumns(), f"the Pipeline's preprocessing cannot be mapped back to raw columns ({why})"
    return final, _RawColumns(preprocessor, origins, len(names), done), _split_note(origins, names)


def _split_note(origins: np.ndarray, names: list[str]) -> str:
    """The note on a Pipeline explained by its final step (``_choose`` reads its first words)."""
    return (
        f"final step of the Pipeline, on its {len(origins)} transformed columns summed back to {len(names)} raw columns"
    )


def _transform_once(
    preprocessor: Any, X: Any, explained: np.ndarray, drawn: np.ndarray | None, check: np.ndarray
) -> tuple[tuple, tuple[np.ndarray, np.ndarray]]:
    """One transform call over the explained rows, the background rows, the check sample and its copies.

    Returns ((explained positions, their rows, background rows or None), (sample rows, copies)), all transformed.
    """
    blocks = [explained, np.empty(0, dtype=int) if drawn is None else drawn, check]
    copies = origin_check_takes(check, X.shape[1])
    stacked = take_columns(X, [np.concatenate([*blocks, rows]) for rows in copies])
    rows, background, sample, shuffled = np.split(
        dense(preprocessor.transform(stacked)), np.cumsum([len(block) for block in blocks])
    )
    return (explained, rows, None if drawn is None else background), (sample, shuffled)


def _draw(rng: np.random.RandomState, n_rows: int, background_rows: int) -> tuple[np.ndarray, np.ndarray]:
    """The order of the rows (explained ones first) and the sorted background positions, in that draw order."""
    order = rng.permutation(n_rows)
    drawn = np.sort(rng.permutation(n_rows)[:background_rows])  # drawn anyway: later draws stay the same
    return order, drawn


def _estimator_rows(to_raw: _RawColumns, chosen: _Choice, raw_rows: Any, positions: np.ndarray) -> Any:
    """The rows as the explained estimator takes them (floats for LinearExplainer and its additivity check)."""
    rows = to_raw.rows(raw_rows, positions)
    return np.asarray(rows, dtype=float) if chosen.name == "linear" else rows


def _explain(
    chosen: _Choice, target: Any, rows: Any, background: Any, task: Task
) -> tuple[np.ndarray, np.ndarray, str]:
    """(values (n, columns, outputs), base values (n, outputs), output space): one output per class."""
    values, base, space = chosen.explain(target, rows, background, task)
    return (*_per_class(values, base, task, space), space)


class _Choice:
    """An explainer: ``explain(model, rows, background, task) -> (values, base values, output space)``,
    and ``outputs(model, rows, task, space)``, the model output its values add up to."""

    def __init__(self, name: str, explain: Any, reason: str, outputs: Any = model_outputs):
        self.name, self.explain, self.reason, self.outputs = name, explain, reason, outputs


def _chosen(
    model: Any,
    target: Any,
    to_raw: _RawColumns,
    task: Task,
    algorithm: str,
    note: str,
    n_columns: int,
    exact_max_features: int,
    random_state: int,
    n_jobs: int = 1,
    deadline: float | None = None,
) -> tuple[Any, _RawColumns, _Choice]:
    """The explained model, its raw-column mapping and its explainer; a model-agnostic choice explains the
    whole ``model`` on its raw columns (raw values masked, never dummies)."""
    chosen = _choose(target, task, algorithm, note, random_state, n_jobs, deadline)
    if chosen.name != _MODEL_AGNOSTIC:
        return target, to_raw, chosen
    return (
        model,
        _RawColumns(),
        _model_agnostic(chosen.reason, model, algorithm, n_columns, exact_max_features, random_state),
    )


_MODEL_AGNOSTIC = "model-agnostic"  # what _choose returns when no exact explainer fits: see _model_agnostic


def _choose(
    model: Any,
    task: Task,
    algorithm: str,
    pipeline_note: str,
    random_state: int,
    n_jobs: int = 1,
    deadline: float | None = None,
) -> _Choice:
    """The explainer of ``model``, or a model-agnostic choice (``_MODEL_AGNOSTIC``) whose reason says why."""
    kind = model_name(model)
    if pipeline_note and not pipeline_note.startswith("final step"):
        return _Choice(_MODEL_AGNOSTIC, None, pipeline_note)
    suffix = f" ({pipeline_note})" if pipeline_note else ""
    if algorithm in ("auto", "tree") and isinstance(model, BoosterModel):
        return _Choice("tree", _native_tree, model.tree_shap_reason + suffix)
    deep_problem = None
    if algorithm in ("auto", "deep"):
        network, deep_problem = _deep_choice(model, kind, suffix, random_state)
        if network is not None:
            return network
        if algorithm == "deep":
            raise ValueError(f"shap.algorithm is 'deep' but {deep_problem}")
    if isinstance(model, PredictOnly) and algorithm in ("auto", *MODEL_AGNOSTIC):
        return _Choice(
            _MODEL_AGNOSTIC, None, f"{kind} only predicts (no scikit-learn estimator, tree ensemble or linear model)"
        )
    if algorithm in ("auto", "tree") and type(model).__module__.startswith("lightgbm"):
        return _Choice(
            "tree",
            _lightgbm_tree,
            f"{kind} is a LightGBM tree ensemble: its own exact TreeSHAP "
            f"(predict(pred_contrib=True), which shap's TreeExplainer calls too){suffix}",
        )
    categories = _native_categories_problem(model)
    if categories and algorithm == "auto":
        return _Choice(_MODEL_AGNOSTIC, None, categories + suffix)
    # Linear before tree: a linear model is no tree ensemble, and trying TreeExplainer on it costs more than SHAP.
    linear_problem = _linear_problem(model) if algorithm in ("auto", "linear") else None
    if algorithm == "linear" or (algorithm == "auto" and linear_problem is None):
        if linear_problem:
            raise ValueError(f"shap.algorithm is 'linear' but {linear_problem}")
        return _Choice("linear", _linear, f"{kind} is a linear model: LinearExplainer (exact){suffix}")
    explainer, tree_problem = _tree_explainer(model) if algorithm in ("auto", "tree") else (None, None)
    if algorithm == "tree" or (algorithm == "auto" and tree_problem is None):
        if tree_problem:
            raise ValueError(f"shap.algorithm is 'tree' but TreeExplainer cannot explain {kind}: {tree_problem}")
        return _TreeChoice(explainer, f"{kind} is a tree ensemble", suffix, n_jobs, deadline)
    why = (
        f"shap.algorithm is {algorithm!r}"
        if algorithm in MODEL_AGNOSTIC
        else (
            f"{kind} is neither a tree ensemble ({tree_problem}) nor a linear model ({linear_problem}) "
            f"nor a network ({deep_problem})"
        )
    )
    return _Choice(_MODEL_AGNOSTIC, None, why)


def _model_agnostic(
    why: str, model: Any, algorithm: str, n_columns: int, exact_max_features: int, random_state: int
) -> _Choice:
    """Exact or sampled SHAP values of ``model`` (a whole Pipeline) on its ``n_columns`` raw columns, and why."""
    columns = f"the whole Pipeline on its {n_columns} raw columns" if isinstance(model, Pipeline) else "the model"
    if algorithm == "exact" or (algorithm == "auto" and n_columns <= exact_max_features):
        if n_columns > _EXACT_MAX_COLUMNS:
            raise ValueError(
                f"shap.algorithm is 'exact' but the model has {n_columns} raw columns (2^{n_columns} coalitions "
                f"per row); exact values take at most {_EXACT_MAX_COLUMNS}: use 'auto' or 'permutation'"
            )
        rule = (
            "" if algorithm == "exact" else f"; {n_columns} columns <= shap.exact_max_features = {exact_max_features}"
        )
        return _Choice(
            "exact",
            _exact,
            f"{why}: exact Shapley values of {columns} (shap's ExactExplainer over the background{rule})",
        )
    rule = (
        "" if algorithm == "permutation" else f"; {n_columns} columns > shap.exact_max_features = {exact_max_features}"
    )
    return _Choice(
        "permutation",
        partial(_permutation, random_state),
        f"{why}: sampled PermutationExplainer of {columns}, seeded by shap.random_state = {random_state}{rule}",
    )


_NETWORK_SPACES = {"logits": "margin", "probabilities": "probability", "regression": "prediction"}
_SPACE_WORDS = {
    "margin": "values in margin (log-odds: the output before a final sigmoid or softmax)",
    "probability": "values in probability (the network's own output)",
    "prediction": "values in the prediction",
}


def _deep_choice(model: Any, kind: str, suffix: str, random_state: int) -> tuple[_DeepChoice | None, str | None]:
    """DeepLIFT-SHAP of a PyTorch model (one with a ``torch_module``) or of a scikit-learn MLP; else why not."""
    adapter = model if hasattr(model, "torch_module") or not isinstance(model, PredictOnly) else model.model
    if hasattr(adapter, "torch_module"):  # the PyTorch tabular adapter (itself a PredictOnly model), or one wrapped
        space = _NETWORK_SPACES.get(adapter.output_kind)
        if space is None:
            raise ValueError(f"output_kind {adapter.output_kind!r} is none of {sorted(_NETWORK_SPACES)}")
        subject = f"{type(adapter.torch_module).__name__} is a PyTorch module"
        choice = _DeepChoice(adapter.torch_module, space, subject, suffix, random_state)
        choice.outputs = partial(_network_outputs, adapter.torch_module)
        return choice, None
    problem = mlp_problem(model)
    if problem is None and find_spec("torch") is None:
        problem = f"{kind} is a scikit-learn MLP, but the deep path needs PyTorch, which is not installed"
    if problem is not None:
        return None, problem
    subject = f"{kind} is a scikit-learn MLP (its weights as a PyTorch network)"
    space = "margin" if is_classifier(model) else "prediction"
    return _DeepChoice(mlp_module(model), space, subject, suffix, random_state), None


class _DeepChoice(_Choice):
    """DeepLIFT-SHAP of ``module`` in ``space``; once explained, ``name`` and ``reason`` say if it fell back."""

    def __init__(self, module: Any, space: str, subject: str, suffix: str, random_state: int):
        self.module, self.space, self.random_state = module, space, random_state
        self.subject, self.ending = subject, f"{_SPACE_WORDS[space]}{suffix}"
        super().__init__(
            "deep",
            self._explain,
            f"{subject}: DeepLIFT-SHAP (shap's DeepExplainer values, additive), batched over rows x background "
            f"rows; {self.ending}",
        )

    def _explain(self, model: Any, rows: Any, background: Any, task: Task) -> tuple[np.ndarray, np.ndarray, str]:
        result = deep_shap_values(self.module, rows, background, random_state=self.random_state)
        n_outputs, wanted = result.values.shape[2], len(output_names(task))
        if n_outputs != wanted and not (task.kind == "binary" and n_outputs == 1):
            raise ValueError(f"The network returns {n_outputs} outputs per row, but its task has {wanted}.")
        if result.method == "expected_gradients":
            self.name = "expected_gradients"
            self.reason = (
                f"{self.subject}, but {result.fallback_reason}: expected gradients instead (gradients at "
                f"seeded random points between each row and each background row), additive only approximately; "
                f"{self.ending}"
            )
        return result.values, result.base_values, self.space


def _network_outputs(module: Any, model: Any, rows: Any, task: Task, space: str) -> np.ndarray:
    """A PyTorch model's own output (its module's), one column per output as ``models.model_outputs`` gives it."""
    outputs = module_outputs(module, rows)
    if task.kind == "binary" and outputs.shape[1] == 1:
        return np.hstack([(1.0 if space == "probability" else 0.0) - outputs, outputs])
    return outputs


def _tree_explainer(model: Any) -> tuple[shap.TreeExplainer | None, str | None]:
    """shap's TreeExplainer of the model (its trees converted once, then reused), or why there is none."""
    categories = _native_categories_problem(model)
    if categories:
        return None, categories
    try:
        return shap.TreeExplainer(model), None
    except Exception as err:  # shap raises several types for unsupported models
        return None, str(err).split("\n")[0][:200] or type(err).__name__


def _native_categories_problem(model: Any) -> str | None:
    """Why a HistGradientBoosting model with native categorical splits has no TreeExplainer, or None.

    shap's TreeExplainer converts such a model's trees with their numeric thresholds only (its
    categorical bitsets are not read), and takes no category columns: its values would not be the
    model's. Each raw column is masked model-agnostically instead, categories as the model reads them.
    """
    categorical = getattr(model, "is_categorical_", None)
    if categorical is None or not np.any(categorical):
        return None
    return (
        f"{model_name(model)} splits on {int(np.sum(categorical))} native categorical column(s) "
        "(categorical_features), which shap's TreeExplainer does not read"
    )


def _linear_problem(model: Any) -> str | None:
    kind = type(model).__name__
    linear_family = type(model).__module__.startswith("sklearn.linear_model") or isinstance(
        model, (LinearSVC, LinearSVR)
    )
    if not linear_family or not hasattr(model, "coef_"):
        return f"{kind} is not a linear model with coef_"
    if isinstance(model, _NONLINEAR_LINK_MODELS):
        return f"{kind} predicts through a non-identity link"
    return None


class _TreeChoice(_Choice):
    """shap's TreeExplainer, chunked over ``n_jobs`` processes until ``deadline`` (a ``time.perf_counter()``
    value, or None); once explained, ``reason`` states the time taken and ``done`` the positions of the
    rows explained (all of them unless the deadline stopped the work)."""

    def __init__(self, explainer: shap.TreeExplainer, subject: str, suffix: str, n_jobs: int, deadline: float | None):
        self.explainer, self.subject, self.suffix, self.n_jobs, self.deadline = (
            explainer,
            subject,
            suffix,
            n_jobs,
            deadline,
        )
        self.done: np.ndarray | None = None
        super().__init__("tree", self._explain, f"{subject}: TreeExplainer (exact){suffix}")

    def _explain(self, model: Any, rows: Any, background: Any, task: Task) -> tuple[np.ndarray, np.ndarray, str]:
        values, self.done, timing = tree_shap_values(self.explainer, rows, self.n_jobs, self.deadline)
        self.reason = f"{self.subject}: TreeExplainer (exact), {timing}{self.suffix}"
        probability = task.is_classification and self.explainer.model.tree_output == "probability"
        space = "prediction" if not task.is_classification else ("probability" if probability else "margin")
        return _as_3d(values), np.atleast_1d(self.explainer.expected_value), space


def _lightgbm_tree(model: Any, rows: Any, background: Any, task: Task) -> tuple[np.ndarray, np.ndarray, str]:
    """LightGBM's native TreeSHAP, skipping shap's conversion of the model (most of TreeExplainer's time).

    ``pred_contrib`` gives, per output, one column per feature and the expected value last; the
    same numbers shap's TreeExplainer returns for LightGBM, in raw score (log-odds for classifiers).
    """
    values, base = split_contributions(np.asarray(model.predict(rows, pred_contrib=True), dtype=float), rows.shape[1])
    return values, base, "margin" if task.is_classification else "prediction"


def _native_tree(model: BoosterModel, rows: Any, background: Any, task: Task) -> tuple[np.ndarray, np.ndarray, str]:
    """A native booster's own TreeSHAP (``boosters.BoosterModel.tree_shap``), in the space its objective names."""
    return (*model.tree_shap(rows), model.output_space)


def _linear(model: Any, rows: Any, background: Any, task: Task) -> tuple[np.ndarray, np.ndarray, str]:
    explainer = shap.LinearExplainer(model, np.asarray(background, dtype=float))
    values = explainer.shap_values(np.asarray(rows, dtype=float))
    return _as_3d(values), np.atleast_1d(explainer.expected_value), "margin" if task.is_classification else "prediction"


def _exact(model: Any, rows: Any, background: Any, task: Task) -> tuple[np.ndarray, np.ndarray, str]:
    """Exact Shapley values: every coalition of columns, the others masked with each background row."""
    return _masked(shap.explainers.Exact, model, rows, background, task, max_evals=2 ** rows.shape[1])


def _permutation(
    random_state: int, model: Any, rows: Any, background: Any, task: Task
) -> tuple[np.ndarray, np.ndarray, str]:
    """shap's sampled PermutationExplainer, its permutations seeded by ``random_state``."""
    with _global_random_kept():  # shap seeds numpy's global generator (np.random.seed) and draws from it
        return _masked(
            partial(shap.explainers.Permutation, seed=random_state),
            model,
            rows,
            background,
            task,
            max_evals=max(500, 2 * rows.shape[1] + 1),
        )


@contextlib.contextmanager
def _global_random_kept() -> Iterator[None]:
    """numpy's global generator restored, after the block, to the state it had before."""
    state = np.random.get_state()
    try:
        yield
    finally:
        np.random.set_state(state)


def _masked(
    explainer_type: Any, model: Any, rows: Any, background: Any, task: Task, **call: Any
) -> tuple[np.ndarray, np.ndarray, str]:
    """Model-agnostic SHAP values of ``rows``: the model on rows whose masked columns hold background values.

    The rows and the background are taken as the model takes them (a whole Pipeline: raw rows of any
    dtype, numeric codes for shap's masker, see ``_Codec``), so every row the model sees is made of real values.
    """
    codec = _Codec(background if isinstance(background, pd.DataFrame) else None)
    if not task.is_classification:
        space = "prediction"
    else:
        space = "probability" if hasattr(model, "predict_proba") else "margin"

    def predict(encoded: np.ndarray) -> np.ndarray:
        return model_outputs(model, codec.decode(encoded), task, space)

    masker = shap.maskers.Independent(codec.encode(background), max_samples=len(background))
    result = explainer_type(predict, masker)(codec.encode(rows), silent=True, **call)
    return result.values, np.asarray(result.base_values), space


class _Codec:
    """Numeric codes for non-numeric DataFrame columns, so shap's maskers can mix rows."""

    def __init__(self, like: pd.DataFrame | None):
        self.like = like
        self.categories = (
            {}
            if like is None
            else {
                name: pd.Index(pd.unique(like[name].dropna()))
                for name in like.columns
                if not pd.api.types.is_numeric_dtype(like[name])
            }
        )

    def encode(self, X: Any) -> np.ndarray:
        if self.like is None:
            return np.asarray(X, dtype=float)
        columns = {}
        for name in X.columns:
            if name in self.categories:
                self.categories[name] = self.categories[name].append(
                    pd.Index(pd.unique(X[name].dropna())).difference(self.categories[name])
                )
                codes = self.categories[name].get_indexer(X[name]).astype(float)
                columns[name] = np.where(X[name].isna(), np.nan, codes)
            else:
                columns[name] = X[name].to_numpy(dtype=float, na_value=np.nan)
        return np.column_stack([columns[name] for name in X.columns])

    def decode(self, encoded: np.ndarray) -> Any:
        if self.like is None:
            return encoded
        frame = pd.DataFrame(encoded, columns=self.like.columns)
        for name, categories in self.categories.items():
            codes = frame[name].to_numpy()
            values = categories.to_numpy()[np.nan_to_num(codes, nan=0).astype(int)].astype(object)
            values[np.isnan(codes)] = np.nan
            frame[name] = values
        return frame.astype(self.like.dtypes.to_dict()) if not self.categories else _restore_dtypes(frame, self.like)


def _restore_dtypes(frame: pd.DataFrame, like: pd.DataFrame) -> pd.DataFrame:
    for name in like.columns:
        if isinstance(like[name].dtype, pd.CategoricalDtype):
            frame[name] = pd.Categorical(frame[name], categories=like[name].cat.categories)
    return frame


def _as_3d(values: Any) -> np.ndarray:
    if isinstance(values, list):
        return np.stack(values, axis=-1)
    values = np.asarray(values)
    return values[:, :, None] if values.ndim == 2 else values


def _per_class(values: np.ndarray, base: np.ndarray, task: Task, space: str) -> tuple[np.ndarray, np.ndarray]:
    """(n, f, n_outputs) values and (n, n_outputs) base values, one output per class.

    A binary model explained in one output (the positive class's margin) gets the negative
    class as its mirror image, which is exact: logit(1 - p) = -logit(p).
    """
    values = _as_3d(values)
    base = np.asarray(base, dtype=float)
    base = np.broadcast_to(
        base.reshape(1, -1) if base.ndim <= 1 else base.reshape(len(values), -1), (len(values), values.shape[2])
    ).copy()
    if task.kind == "binary" and values.shape[2] == 1:
        offset = 1.0 if space == "probability" else 0.0
        values = np.concatenate([-values, values], axis=2)
        base = np.hstack([offset - base, base])
    return values, base


def _additivity_error(
    outputs: Any, model: Any, rows: Any, task: Task, space: str, values: np.ndarray, base: np.ndarray
) -> float:
    with warnings.catch_warnings():  # rows given as an array to a model fitted on a frame: the same columns
        warnings.filterwarnings("ignore", message="X does not have valid feature names")
        expected = outputs(model, rows, task, space)
    return float(np.max(np.abs(values.sum(axis=1) + base - expected)))


def _frame(X: Any, names: list[str]) -> pd.DataFrame:
    return X.reset_index(drop=True) if isinstance(X, pd.DataFrame) else pd.DataFrame(X, columns=names)


class RowExplainer:
    """The explainer :func:`shap_values` chooses for one model, built once, explaining any rows of its raw columns.

    Build it with :func:`row_explainer` (choosing, as ``shap_values`` does, on rows like the model's
    input), or rebuild it with :func:`restored_explainer` from what :attr:`algorithm`,
    :attr:`origins` and :attr:`background` hold (no rows needed for a tree ensemble). Then
    :meth:`explain` per batch of rows: the TreeExplainer, the Pipeline's column mapping and the
    transformed background are made once, not per call.
    """

    def __init__(
        self,
        target: Any,
        to_raw: _RawColumns,
        chosen: _Choice,
        task: Task,
        feature_names: list[str],
        background: pd.DataFrame | np.ndarray | None,
        random_state: int = 0,
    ):
        self.task, self.feature_names, self.background = task, list(feature_names), background
        self.random_state = random_state  # of the sampled explainer's permutations
        self._target, self._chosen = target, chosen
        self._to_raw = _RawColumns(to_raw.preprocessor, to_raw.origins, to_raw.n_raw)  # no cached rows
        self._background = None if background is None else to_raw.background(background)

    @property
    def algorithm(self) -> str:
        """The explainer: tree, linear or permutation (as ``ShapResult.algorithm``)."""
        return self._chosen.name

    @property
    def reason(self) -> str:
        """Why that explainer (as ``ShapResult.reason``)."""
        return self._chosen.reason

    @property
    def origins(self) -> list[int] | None:
        """For each column the Pipeline's preprocessing outputs, its raw column; None when none is mapped."""
        return None if self._to_raw.origins is None else [int(origin) for origin in self._to_raw.origins]

    @property
    def output_names(self) -> list[str]:
        return output_names(self.task)

    def explain(self, X: pd.DataFrame | np.ndarray) -> tuple[np.ndarray, np.ndarray, str]:
        """SHAP values of the rows ``X`` (in the model's input layout).

        Returns
        -------
        (ndarray of shape (n_rows, n_features, n_outputs), ndarray of shape (n_rows, n_outputs), str)
            Values per raw column, base values, and the output space they add up to.
        """
        values, base, space, _ = self._explained(X)
        return self._to_raw.sum_back(values), base, space

    def check(self, X: pd.DataFrame | np.ndarray) -> tuple[str, float]:
        """The output space of the explanations of the rows ``X``, and their largest gap to the model's output."""
        values, base, space, rows = self._explained(X)
        return space, _additivity_error(self._chosen.outputs, self._target, rows, self.task, space, values, base)

    def _explained(self, X: Any) -> tuple[np.ndarray, np.ndarray, str, Any]:
        rows = _estimator_rows(self._to_raw, self._chosen, X, np.arange(X.shape[0]))
        return (*_explain(self._chosen, self._target, rows, self._background, self.task), rows)


def row_explainer(
    model: Any,
    X: pd.DataFrame | np.ndarray,
    task: Task,
    *,
    feature_names: list[str],
    algorithm: str = "auto",
    background_rows: int = 100,
    exact_max_features: int = 10,
    random_state: int = 0,
) -> RowExplainer:
    """The explainer ``shap_values(model, X, task, ...)`` uses, ready to explain any rows like ``X``.

    Parameters
    ----------
    model : fitted estimator or Pipeline
    X : DataFrame or ndarray
        Rows in the layout the model expects: a Pipeline's column mapping is verified on them and,
        where the algorithm needs one, the background is the seeded sample ``shap_values`` draws
        from them (the same rows for the same ``X``, ``background_rows`` and ``random_state``).
    task : Task
    feature_names : list of str
        Names of the columns of ``X``.
    algorithm, background_rows, exact_max_features, random_state
        As in :func:`shap_values`.

    Returns
    -------
    RowExplainer
    """
    order, drawn = _draw(np.random.RandomState(random_state), X.shape[0], background_rows)
    target, to_raw, note = _explained_model(model, X, order, np.empty(0, dtype=int), drawn, feature_names)
    target, to_raw, chosen = _chosen(
        model, target, to_raw, task, algorithm, note, len(feature_names), exact_max_features, random_state
    )
    background = None if chosen.name == "tree" else take_rows(X, drawn)
    return RowExplainer(target, to_raw, chosen, task, feature_names, background, random_state)


def restored_explainer(
    model: Any,
    task: Task,
    *,
    feature_names: list[str],
    algorithm: str,
    origins: list[int] | None,
    background: pd.DataFrame | np.ndarray | None,
    random_state: int = 0,
) -> RowExplainer:
    """The explainer :func:`row_explainer` built, again: the same ``algorithm`` forced, its ``origins`` trusted.

    Raises ValueError when that algorithm no longer fits the model (rather than falling back to a
    slower one), or when it needs a background and none is given.
    """
    preprocessor, final = split_pipeline(model)
    if origins is not None and preprocessor is not None:
        to_raw = _RawColumns(preprocessor, np.asarray(origins), len(feature_names))
        target, note = final, _split_note(to_raw.origins, feature_names)
    else:
        to_raw, target, note = _RawColumns(), (final if preprocessor is None else model), ""
    if algorithm != "tree" and background is None:
        raise ValueError(f"the {algorithm} explainer needs background rows")
    no_auto_choice = 0  # the algorithm is forced here, so the exact/sampled threshold decides nothing
    target, to_raw, chosen = _chosen(
        model, target, to_raw, task, algorithm, note, len(feature_names), no_auto_choice, random_state
    )
    background = None if algorithm == "tree" else background
    return RowExplainer(target, to_raw, chosen, task, feature_names, background, random_state)

"""What a model is: fitted or not, its task, its outputs, and how a Pipeline maps raw columns."""

from __future__ import annotations

import sys
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin, is_classifier, is_regressor
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import ExtraTreesClassifier, ExtraTreesRegressor, RandomForestClassifier, RandomForestRegressor
from sklearn.exceptions import NotFittedError
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import FeatureUnion, Pipeline
from sklearn.preprocessing import FunctionTransformer
from sklearn.utils.metaestimators import available_if
from sklearn.utils.validation import check_is_fitted

from .data import take_columns
from .errors import InvalidInputError
from .results import Task

# Forests whose predict and predict_proba average their trees' outputs (see ``response``).
_FORESTS = (RandomForestClassifier, RandomForestRegressor, ExtraTreesClassifier, ExtraTreesRegressor)


def check_model(model: Any) -> None:
    """Raise InvalidInputError unless ``model`` can predict (or is a PyTorch module) and is fitted.

    A pyspark.ml model, or a pyfunc model logged with ``mlflow.spark``, is pointed to
    ``mlflow_explain.spark.explain``: its ``predict`` (if any) runs Spark row batch by row batch and
    says nothing of its task or classes.
    """
    if is_torch_module(model):
        return
    if is_spark_ml_model(model) or _logged_with_spark(model):
        raise InvalidInputError(
            f"The model ({type(model).__name__}) is a pyspark.ml model, which runs on Spark DataFrames: explain it "
            "with mlflow_explain.spark.explain(model, spark_df, target)."
        )
    if not hasattr(model, "predict"):
        raise InvalidInputError(f"The model ({type(model).__name__}) has no predict method.")
    if hasattr(model, "fit") and _is_estimator(model):
        try:
            check_is_fitted(model)
        except NotFittedError as err:
            raise InvalidInputError(
                f"The model ({type(model).__name__}) is not fitted; call fit before explaining it."
            ) from err
        except TypeError:
            pass  # not a scikit-learn estimator: nothing to check


def as_estimator(model: Any, y: np.ndarray) -> Any:
    """``model`` as scikit-learn's tags and scorers need it: itself, or a ``PredictOnly`` model around it.

    An object scikit-learn does not take for an estimator (a custom ``mlflow.pyfunc.PythonModel``
    seen through ``tracking.PyfuncPredictor``, a plain class with ``predict``) is wrapped: a
    classifier when it has ``predict_proba`` or ``classes_`` (its classes are ``classes_``, else the
    labels in ``y``), a regressor otherwise. Both methods explain it model-agnostically. (A
    ``torch.nn.Module`` is adapted by ``torch_tabular.torch_estimator`` instead.)
    """
    if _is_estimator(model):
        return model
    if hasattr(model, "predict_proba") or hasattr(model, "classes_"):
        classes = getattr(model, "classes_", None)
        return PredictOnlyClassifier(model, np.unique(y) if classes is None else np.asarray(classes))
    return PredictOnlyRegressor(model)


def is_spark_ml_model(model: Any) -> bool:
    """True for a fitted ``pyspark.ml`` ``Model`` or ``PipelineModel`` (told without importing pyspark)."""
    base = sys.modules.get("pyspark.ml.base")
    return base is not None and isinstance(model, base.Model)


def _logged_with_spark(model: Any) -> bool:
    """True for a loaded MLflow pyfunc model whose flavors include ``spark`` (read without importing MLflow)."""
    flavors = getattr(getattr(model, "metadata", None), "flavors", None)
    return isinstance(flavors, dict) and "spark" in flavors


def is_torch_module(model: Any) -> bool:
    """True for a ``torch.nn.Module`` (told without importing torch: whoever made one has imported it)."""
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(model, torch.nn.Module)


def is_keras_model(model: Any) -> bool:
    """True for a Keras 3 ``keras.Model`` (told without importing Keras: whoever made one has imported it)."""
    keras = sys.modules.get("keras")
    return keras is not None and isinstance(model, getattr(keras, "Model", ()))


def _is_estimator(model: Any) -> bool:
    """True for a scikit-learn estimator, which its tag machinery (``is_classifier``, the scorers) accepts.

    A scikit-learn ``BaseEstimator`` (XGBoost's and LightGBM's models are ones), or an object with
    its own ``__sklearn_tags__``; scikit-learn >= 1.7 raises AttributeError on anything else.
    """
    return isinstance(model, BaseEstimator) or hasattr(model, "__sklearn_tags__")


class PredictOnly(BaseEstimator):
    """A fitted object that only predicts (no scikit-learn estimator), forwarding its ``predict``.

    SHAP explains it with the model-agnostic permutation explainer, and permutation importance
    scores it like any scikit-learn model; results name it by the wrapped object's class (``model_name``).
    """

    def __init__(self, model: Any):
        self.model = model

    def __sklearn_is_fitted__(self) -> bool:
        return True

    def predict(self, X: Any) -> Any:
        return self.model.predict(X)


class PredictOnlyRegressor(RegressorMixin, PredictOnly):
    """A predict-only object taken for a regressor."""


class PredictOnlyClassifier(ClassifierMixin, PredictOnly):
    """A predict-only object taken for a classifier of ``classes``; forwards ``predict_proba`` and
    ``decision_function`` when the object has them."""

    def __init__(self, model: Any, classes: np.ndarray):
        super().__init__(model)
        self.classes = classes

    @property
    def classes_(self) -> np.ndarray:
        return self.classes

    @available_if(lambda self: hasattr(self.model, "predict_proba"))
    def predict_proba(self, X: Any) -> Any:
        return self.model.predict_proba(X)

    @available_if(lambda self: hasattr(self.model, "decision_function"))
    def decision_function(self, X: Any) -> Any:
        return self.model.decision_function(X)


def user_model(model: Any) -> Any:
    """The user's own model: the object a ``PredictOnly`` model wraps (the Keras model an adapter of one holds),
    else ``model`` itself."""
    inner = model.model if isinstance(model, PredictOnly) else model
    return getattr(inner, "keras_model", inner)


def model_name(model: Any) -> str:
    """The class name of the user's model (the wrapped object's, for a ``PredictOnly`` model)."""
    return type(user_model(model)).__name__


BOOSTING_LIBRARIES = ("xgboost", "lightgbm", "catboost")  # each one model family, its native boosters included


def model_family(model: Any) -> str:
    """The family a model's explanation drifts within: its final estimator's class, or its boosting library.

    The final estimator is a Pipeline's (or a pyspark.ml PipelineModel's) last step and a fitted search's
    best estimator, unwrapped in turn: a grid-searched ``RandomForestClassifier`` in a Pipeline is
    ``RandomForestClassifier``, hyperparameters aside. Every model of XGBoost, LightGBM or CatBoost (its
    scikit-learn wrapper or its native booster) is that library's name: ``xgboost``, ``lightgbm``, ``catboost``.
    """
    final = user_model(model)
    while True:
        steps = getattr(final, "steps", None) or getattr(final, "stages", None)
        if isinstance(steps, list) and steps:
            final = steps[-1][1] if isinstance(steps[-1], tuple) else steps[-1]
        elif getattr(final, "best_estimator_", None) is not None:
            final = final.best_estimator_
        else:
            break
    final = user_model(final)
    library = type(final).__module__.split(".")[0]
    return library if library in BOOSTING_LIBRARIES else type(final).__name__


def model_details(model: Any) -> dict | None:
    """What adapting the user's model decided (a PyTorch module's task, outputs and device), for summary.json."""
    return getattr(model, "details", None) if isinstance(model, PredictOnly) else None


def detect_task(model: Any, y: np.ndarray, target_names: list[str] | None = None) -> Task:
    """Regression, binary or multiclass, from the model and the target; checks the target fits it.

    A 2-D target (n_rows, n_outputs) makes a multi-output regression whose outputs are named
    ``target_names`` (else y0, y1, ...); a classifier of such a target is not supported.

    A classifier by scikit-learn's tags, or a model with ``classes_`` that is not a regressor, is a
    classification of its classes (else of the labels in ``y``); anything else is a regression, whose
    target must be numeric. A model that only predicts is first wrapped by ``as_estimator``, which
    takes it for a classifier when it has ``predict_proba`` or ``classes_``.
    """
    classes = getattr(model, "classes_", None)
    classifier = is_classifier(model) or (classes is not None and not is_regressor(model))
    if np.ndim(y) == 2:
        if classifier:
            raise InvalidInputError(
                f"The target has {np.shape(y)[1]} columns: multi-output classifiers are not supported yet; "
                "explain one classifier per target column."
            )
        _check_numeric_target(np.asarray(y).ravel())
        return Task("regression", outputs=tuple(target_names or (f"y{k}" for k in range(np.shape(y)[1]))))
    if classifier:
        if classes is None:
            classes = np.unique(y)
        classes = np.asarray(classes)
        unknown = sorted(set(pd.unique(y).tolist()) - set(classes.tolist()), key=str)
        if unknown:
            shown = ", ".join(repr(v) for v in unknown[:5])
            raise InvalidInputError(
                f"The target holds label(s) the classifier was not trained on ({shown}); "
                f"its classes are {classes.tolist()}."
            )
        return Task("binary" if len(classes) == 2 else "multiclass", tuple(classes.tolist()))
    _check_numeric_target(y)
    return Task("regression")


def _check_numeric_target(y: np.ndarray) -> None:
    if not np.issubdtype(np.asarray(y).dtype, np.number) and not _all_numeric(y):
        example = next(v for v in np.asarray(y).tolist() if not _is_number(v))
        raise InvalidInputError(f"The target of a regressor must be numeric, but it holds {example!r}.")


def output_names(task: Task) -> list[str]:
    """One name per model output: 'prediction' (each output's name for a multi-output regressor), or the classes'
    names (their labels as text, unless named)."""
    if not task.is_classification:
        return list(task.outputs) or ["prediction"]
    return [str(c) for c in (task.class_names or task.classes)]


def split_pipeline(model: Any) -> tuple[Any | None, Any]:
    """(preprocessing steps, final estimator) of a Pipeline; (None, model) otherwise."""
    if isinstance(model, Pipeline) and len(model.steps) > 1:
        return model[:-1], model[-1]
    if isinstance(model, Pipeline):
        return None, model[-1]
    return None, model


def model_outputs(model: Any, X: Any, task: Task, space: str) -> np.ndarray:
    """Model output in ``space`` as (n_rows, n_outputs): 'prediction', 'probability' or 'margin'.

    Binary margins come from the library as one column (the positive class); they are returned
    as two columns (-m, m) so every classifier has one output per class.
    """
    if space == "prediction":  # one column per output of a multi-output regressor
        return np.asarray(response(model, X, "predict"), dtype=float).reshape(X.shape[0], -1)
    if space == "probability":
        return np.asarray(response(model, X, "predict_proba"), dtype=float)
    margin = np.asarray(_margin(model, X), dtype=float)
    if margin.ndim == 1 or margin.shape[1] == 1:
        margin = margin.reshape(-1, 1)
        return np.hstack([-margin, margin]) if task.kind == "binary" else margin
    return margin


def response(model: Any, X: Any, method: str) -> Any:
    """``model.<method>(X)``: the model's predict, predict_proba... on the rows ``X``.

    A scikit-learn random forest or extra-trees model on one thread is evaluated tree by tree
    here, without joblib's dispatch of every tree (about 50 microseconds per tree, more than the
    trees themselves on a small batch): the same per-tree outputs summed in the same order and
    divided the same way as its own predict and predict_proba, so the same numbers.
    """
    if method in ("predict", "predict_proba") and _plain_forest(model):
        return _forest_response(model, X, method)
    return getattr(model, method)(X)


def _plain_forest(model: Any) -> bool:
    """A one-thread, single-output scikit-learn forest whose (private) input check is the one this module knows."""
    return (
        type(model) in _FORESTS
        and model.n_jobs in (None, 1)
        and model.n_outputs_ == 1
        and hasattr(model, "_validate_X_predict")
    )


def _forest_response(model: Any, X: Any, method: str) -> np.ndarray:
    X = model._validate_X_predict(X)  # the forest's own input check: fitted, feature names, float32
    classifier = is_classifier(model)
    total = np.zeros((X.shape[0], model.n_classes_) if classifier else X.shape[0], dtype=np.float64)
    for tree in model.estimators_:
        values = tree.tree_.predict(X)  # what DecisionTree*.predict(_proba)(X, check_input=False) returns
        total += values[:, : model.n_classes_] if classifier else values[:, 0]
    total /= len(model.estimators_)
    if classifier and method == "predict":
        return model.classes_.take(np.argmax(total, axis=1), axis=0)
    return total


def _margin(model: Any, X: Any) -> np.ndarray:
    module = type(model).__module__
    if module.startswith("xgboost"):
        return model.predict(X, output_margin=True)
    if module.startswith("lightgbm"):
        return model.predict(X, raw_score=True)
    if isinstance(model, MLPClassifier):
        return _mlp_margin(model, X)
    return model.decision_function(X)


def _mlp_margin(model: MLPClassifier, X: Any) -> np.ndarray:
    """An MLP classifier's output layer before its logistic or softmax: its predict_proba's own steps, less the last.

    The log-odds of the positive class (binary), the softmax logits (multiclass); unlike
    log(p / (1 - p)), exact where the probabilities round to 0 or 1.
    """
    from sklearn.neural_network._base import ACTIVATIONS  # the functions MLPClassifier's forward pass applies

    activation = np.asarray(X, dtype=model.coefs_[0].dtype)
    for k, (weights, intercepts) in enumerate(zip(model.coefs_, model.intercepts_, strict=True)):
        activation = activation @ weights + intercepts
        if k + 1 < len(model.coefs_):
            ACTIVATIONS[model.activation](activation)  # in place, as in MLPClassifier._forward_pass_fast
    return activation


def raw_column_origins(
    preprocessor: Any,
    X_sample: pd.DataFrame | np.ndarray,
    raw_names: list[str],
    *,
    transformed: tuple[np.ndarray, np.ndarray] | None = None,
) -> np.ndarray:
    """For each column the preprocessing outputs, the index of the one raw column it comes from.

    Read from the structure (ColumnTransformer blocks, per-column transformers, output names),
    then verified on ``X_sample``: shuffling a raw column may change only the outputs assigned to
    it. Raises ValueError, saying why, when the preprocessing mixes raw columns.

    Parameters
    ----------
    preprocessor : fitted transformer
    X_sample : DataFrame or ndarray
        Rows the check shuffles, one raw column at a time.
    raw_names : list of str
        Names of the raw columns.
    transformed : (ndarray, ndarray), default=None
        The preprocessing's dense output on ``X_sample`` and on ``origin_check_rows(X_sample)``, when
        the caller already computed them (in one transform call with other rows); else computed here.

    Returns
    -------
    ndarray of int, one raw column index per output column
    """
    origins = _origins(preprocessor, raw_names)
    bad = [k for k, sources in enumerate(origins) if len(sources) != 1]
    if bad:
        raise ValueError(f"output column {bad[0]} of the preprocessing depends on {len(origins[bad[0]])} raw columns")
    origin = np.array([next(iter(sources)) for sources in origins])
    if X_sample.shape[0] >= 2:
        if transformed is None:
            transformed = (
                dense(preprocessor.transform(X_sample)),
                dense(preprocessor.transform(origin_check_rows(X_sample))),
            )
        _verify_origins(*transformed, origin, raw_names)
    return origin


def origin_check_groups(n_columns: int) -> list[np.ndarray]:
    """The sets of raw columns the origin check shuffles, one set per copy of the sample.

    Every column alone when there are few; else, for each bit of the column index, the columns with
    that bit 0 and those with it 1 (2 log2(n) sets). Either way, for any two columns i and j one set
    holds i but not j, so an output that moves with a raw column other than its own is caught.
    """
    bits = max(1, int(np.ceil(np.log2(max(n_columns, 2)))))
    if n_columns <= 2 * bits:
        return [np.array([j]) for j in range(n_columns)]
    codes = np.arange(n_columns)
    return [np.flatnonzero((codes >> bit) & 1 == value) for bit in range(bits) for value in (0, 1)]


def origin_check_takes(positions: np.ndarray, n_columns: int) -> list[np.ndarray]:
    """Row positions, per column, of the origin check's copies of the rows at ``positions``.

    Copy g (rows ``g * len(positions)`` onwards) is those rows with the columns of
    ``origin_check_groups(n_columns)[g]`` rolled down by one row;
    ``data.take_columns(X, origin_check_takes(positions, X.shape[1]))`` builds every copy at once.
    """
    n_rows = len(positions)
    shifted = positions[np.roll(np.arange(n_rows), 1)]
    groups = origin_check_groups(n_columns)
    takes = [np.tile(positions, len(groups)) for _ in range(n_columns)]
    for g, group in enumerate(groups):
        for j in group:
            takes[j][g * n_rows : (g + 1) * n_rows] = shifted
    return takes


def origin_check_rows(X_sample: pd.DataFrame | np.ndarray) -> pd.DataFrame | np.ndarray:
    """The copies of ``X_sample`` that ``raw_column_origins`` transforms, stacked (see ``origin_check_takes``)."""
    return take_columns(X_sample, origin_check_takes(np.arange(X_sample.shape[0]), X_sample.shape[1]))


def is_identity(step: Any) -> bool:
    """True for a step that returns its input: None, "passthrough", or a plain FunctionTransformer with no function.

    A fitted ColumnTransformer holds its "passthrough" blocks (and ``remainder="passthrough"``) as such
    FunctionTransformers in ``transformers_``; a subclass (which may override ``transform``) is not one.
    """
    if step is None or (isinstance(step, str) and step == "passthrough"):
        return True
    return type(step) is FunctionTransformer and step.func is None


def _origins(step: Any, names_in: list[str]) -> list[set[int]]:
    if is_identity(step):
        return [{i} for i in range(len(names_in))]
    if isinstance(step, Pipeline):
        origins = [{i} for i in range(len(names_in))]
        names = list(names_in)
        for position, (_, sub) in enumerate(step.steps):
            inner = _origins(sub, names)
            origins = [set().union(*(origins[i] for i in sources)) for sources in inner]
            if position < len(step.steps) - 1:  # the next step's input names (the last step's are not needed)
                names = _names_out(sub, names)
        return origins
    if isinstance(step, ColumnTransformer):
        return _column_transformer_origins(step, names_in)
    if isinstance(step, FeatureUnion):
        return [sources for _, sub in step.transformer_list if sub != "drop" for sources in _origins(sub, names_in)]
    return _leaf_origins(step, names_in)


def _column_transformer_origins(transformer: ColumnTransformer, names_in: list[str]) -> list[set[int]]:
    width = max((s.stop for s in transformer.output_indices_.values()), default=0)
    origins: list[set[int]] = [set() for _ in range(width)]
    for name, sub, columns in transformer.transformers_:
        block = transformer.output_indices_[name]
        if sub == "drop" or block.stop == block.start:
            continue
        indices = _column_indices(columns, names_in)
        inner = _origins(sub, [names_in[i] for i in indices])
        if len(inner) != block.stop - block.start:
            raise ValueError(f"cannot tell which raw columns feed the outputs of transformer {name!r}")
        for offset, sources in enumerate(inner):
            origins[block.start + offset] = {indices[i] for i in sources}
    return origins


def _column_indices(columns: Any, names_in: list[str]) -> list[int]:
    positions = np.arange(len(names_in))
    if callable(columns):
        raise ValueError("a ColumnTransformer selects columns with a callable")
    if isinstance(columns, slice) or np.isscalar(columns):
        columns = positions[columns] if not isinstance(columns, str) else [columns]
    columns = list(np.atleast_1d(columns))
    if columns and isinstance(columns[0], (bool, np.bool_)):
        return positions[np.asarray(columns, dtype=bool)].tolist()
    return [names_in.index(str(c)) if isinstance(c, str) else int(c) for c in columns]


def _leaf_origins(step: Any, names_in: list[str]) -> list[set[int]]:
    names_out = _names_out(step, names_in)
    if names_out == names_in:
        return [{i} for i in range(len(names_in))]
    origins = []
    for out in names_out:
        matches = [
            i
            for i, name in enumerate(names_in)
            if out == name or out.startswith(name + "_") or out == f"missingindicator_{name}"
        ]
        if not matches:
            raise ValueError(f"{type(step).__name__} output {out!r} does not name the raw column it comes from")
        origins.append({max(matches, key=lambda i: len(names_in[i]))})
    return origins


def _names_out(step: Any, names_in: list[str]) -> list[str]:
    if is_identity(step):
        return list(names_in)
    if not hasattr(step, "get_feature_names_out"):
        raise ValueError(f"{type(step).__name__} does not report its output columns (get_feature_names_out)")
    fitted_names = getattr(step, "feature_names_in_", None)
    return [
        str(n)
        for n in (step.get_feature_names_out() if fitted_names is not None else step.get_feature_names_out(names_in))
    ]


def _verify_origins(base: np.ndarray, transformed: np.ndarray, origin: np.ndarray, raw_names: list[str]) -> None:
    n_rows = base.shape[0]
    for g, group in enumerate(origin_check_groups(len(raw_names))):
        block = transformed[g * n_rows : (g + 1) * n_rows]
        changed = ~((block == base) | (pd.isna(block) & pd.isna(base))).all(axis=0)
        foreign = np.flatnonzero(changed & ~np.isin(origin, group))
        if foreign.size:
            shuffled = ", ".join(repr(raw_names[j]) for j in group[:5]) + (", ..." if len(group) > 5 else "")
            raise ValueError(
                f"shuffling raw column(s) {shuffled} changes output column {foreign[0]}, "
                f"assigned to raw column {raw_names[origin[foreign[0]]]!r}"
            )


def dense(matrix: Any) -> np.ndarray:
    """A transformed matrix as a dense float array."""
    if scipy.sparse.issparse(matrix):
        matrix = matrix.toarray()
    return np.asarray(matrix, dtype=float)


def _is_number(value: Any) -> bool:
    try:
        float(value)
    except (TypeError, ValueError):
        return False
    return True


def _all_numeric(values: np.ndarray) -> bool:
    return all(_is_number(v) for v in values)

"""Native gradient-boosting models as the scikit-learn-style models every tabular method takes (no MLflow).

An ``xgboost.Booster`` (``xgb.train``), a ``lightgbm.Booster`` (``lgb.train``) or a CatBoost model
(``CatBoostClassifier``, ``CatBoostRegressor``, a bare ``catboost.CatBoost``) says what it predicts
only through its objective. :func:`booster_estimator` reads the objective and wraps the model in a
:class:`BoosterClassifier` (``binary:logistic``, ``multi:softprob``, ``binary``, ``multiclass``,
``Logloss``, ``MultiClass``...) or a :class:`BoosterRegressor` (every other objective), with:

- ``predict``, ``predict_proba`` (the library's own probabilities) and ``decision_function`` (the raw
  score, the margin), as scikit-learn's scorers and the package's methods call them;
- ``classes_``: 0..k-1 for XGBoost and LightGBM (the labels they train on), CatBoost's own ``classes_``;
- :meth:`BoosterModel.tree_shap`: the library's own exact, multithreaded TreeSHAP
  (``predict(DMatrix, pred_contribs=True)``, ``predict(X, pred_contrib=True)``,
  ``get_feature_importance(Pool, type="ShapValues")``) in the package's layout;
- ``output_space``: what those values add up to. TreeSHAP explains the margin: the log-odds (or
  the per-class scores before the softmax) of a classifier, and the prediction itself only for a
  regression objective whose link is the identity (``reg:squarederror``, ``regression``,
  ``RMSE``...); a log or logistic link (``count:poisson``, ``tweedie``, ``Poisson``...) is
  explained in margin space too.

The libraries are imported only when such a model is adapted: whoever made one has imported its library.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any, Literal

import numpy as np
import pandas as pd
from scipy.special import expit, softmax
from sklearn.base import ClassifierMixin, RegressorMixin
from sklearn.utils.metaestimators import available_if

from .errors import InvalidInputError
from .models import PredictOnly

Kind = Literal["binary", "multiclass", "regression"]
# Where a classifier's probabilities come from: the library's own predict, or its margin through a link.
Probabilities = Literal["predict", "sigmoid", "softmax"] | None


@dataclasses.dataclass(frozen=True)
class Objective:
    """What a booster's objective makes of its raw score.

    ``name`` as the library spells it; ``kind`` the task; ``probabilities`` how a classifier's are
    obtained (None: the objective gives none, as ``binary:hinge``); ``identity`` whether a regression's
    prediction is its raw score (then its SHAP values add up to the prediction itself).
    """

    name: str
    kind: Kind
    probabilities: Probabilities = None
    identity: bool = False

    @property
    def output_space(self) -> str:
        """The space TreeSHAP's values add up to: 'margin', or 'prediction' for an identity-link regression."""
        return "prediction" if self.kind == "regression" and self.identity else "margin"


_CLASSIFIERS: dict[str, dict[str, tuple[Kind, Probabilities]]] = {
    "xgboost": {
        "binary:logistic": ("binary", "predict"),
        "binary:logitraw": ("binary", "sigmoid"),
        "binary:hinge": ("binary", None),
        "multi:softprob": ("multiclass", "predict"),
        "multi:softmax": ("multiclass", "softmax"),
    },
    "lightgbm": {
        "binary": ("binary", "predict"),
        "multiclass": ("multiclass", "predict"),
        "multiclassova": ("multiclass", "predict"),
    },
    "catboost": {
        "Logloss": ("binary", "predict"),
        "CrossEntropy": ("binary", "predict"),
        "MultiClass": ("multiclass", "predict"),
        "MultiClassOneVsAll": ("multiclass", "predict"),
    },
}
# Regression objectives whose prediction is the raw score (a custom objective has no link either).
_IDENTITY = {
    "xgboost": {
        "reg:squarederror",
        "reg:linear",
        "reg:squaredlogerror",
        "reg:pseudohubererror",
        "reg:absoluteerror",
        "reg:quantileerror",
        "rank:pairwise",
        "rank:ndcg",
        "rank:map",
    },
    "lightgbm": {
        "regression",
        "regression_l1",
        "huber",
        "fair",
        "quantile",
        "mape",
        "lambdarank",
        "rank_xendcg",
        "custom",
    },
}
_EXPONENT_CATBOOST = {"Poisson", "Tweedie"}  # CatBoost's regressions through a log link: every other is the raw score
_MULTI_TARGET_CATBOOST = {"MultiRMSE", "RMSEWithUncertainty", "MultiLogloss", "MultiCrossEntropy", "MultiQuantile"}
_TREE_SHAP_CALLS = {
    "xgboost": "Booster.predict(DMatrix, pred_contribs=True)",
    "lightgbm": "Booster.predict(X, pred_contrib=True)",
    "catboost": 'get_feature_importance(Pool, type="ShapValues")',
}


def booster_library(model: Any) -> str | None:
    """'xgboost', 'lightgbm' or 'catboost' for a native booster this module adapts; None for anything else.

    An ``xgboost.Booster``, a ``lightgbm.Booster``, or any CatBoost model (CatBoost's scikit-learn
    classes are its own, without ``decision_function``); told by the type's module, without importing it.
    XGBoost's and LightGBM's scikit-learn models (``XGBModel``, ``LGBMModel``) are estimators already.
    """
    module, name = type(model).__module__, type(model).__name__
    if module.startswith("xgboost") and name == "Booster":
        return "xgboost"
    if module.startswith("lightgbm") and name == "Booster":
        return "lightgbm"
    if module.startswith("catboost") and hasattr(model, "get_feature_importance"):
        return "catboost"
    return None


def booster_estimator(model: Any) -> BoosterModel:
    """``model`` (a native booster, see :func:`booster_library`) as a classifier or regressor by its objective.

    Raises
    ------
    InvalidInputError
        When the booster predicts several targets, or is not fitted.
    """
    library = _LIBRARIES[booster_library(model)]()
    objective = library.objective(model)
    details = {"library": library.name, "objective": objective.name, "output_space": objective.output_space}
    if objective.kind == "regression":
        return BoosterRegressor(model, library, objective, details)
    return BoosterClassifier(model, library, objective, details, library.classes(model, objective))


class BoosterModel(PredictOnly):
    """A native booster as a fitted model: its predictions, raw scores and TreeSHAP values on rows of its columns.

    Parameters
    ----------
    model : xgboost.Booster, lightgbm.Booster or catboost.CatBoost
    library : _Library
        How to call that library.
    objective : Objective
        What the booster predicts.
    details : dict
        Library, objective and output space, for summary.json (``models.model_details``).
    """

    def __init__(self, model: Any, library: _Library, objective: Objective, details: dict):
        super().__init__(model)
        self.library, self.objective, self.details = library, objective, details
        self.n_features = library.n_features(model)
        self.names = library.feature_names(model)

    @property
    def n_features_in_(self) -> int:
        return self.n_features

    @property
    def feature_names_in_(self) -> np.ndarray:
        """The booster's column names; absent (AttributeError) when it was trained on unnamed columns."""
        if self.names is None:
            raise AttributeError("the booster was trained on unnamed columns")
        return np.asarray(self.names, dtype=object)

    @property
    def output_space(self) -> str:
        return self.objective.output_space

    @property
    def tree_shap_reason(self) -> str:
        """Which TreeSHAP runs, and in which space its values add up (``ShapResult.reason``)."""
        space = {
            "binary": "margin: the log-odds of the positive class",
            "multiclass": "margin: each class's raw score (before the objective's softmax or sigmoid)",
            "regression": "prediction" if self.objective.identity else "margin: the raw score before the link",
        }[self.objective.kind]
        return (
            f"{self.library.title} {type(self.model).__name__} (objective {self.objective.name}) is a tree "
            f"ensemble: the library's own exact multithreaded TreeSHAP ({_TREE_SHAP_CALLS[self.library.name]}), "
            f"values in {space}"
        )

    def decision_function(self, X: Any) -> np.ndarray:
        """The raw score (margin): (n,) for one output, (n, k) per class."""
        return np.asarray(self.library.margin(self.model, self._rows(X)), dtype=float)

    def tree_shap(self, X: Any) -> tuple[np.ndarray, np.ndarray]:
        """The library's TreeSHAP of the rows ``X``: values (n, features, outputs), base values (n, outputs).

        One output for a binary classifier (the positive class's log-odds) and a regression, one per
        class otherwise; ``values.sum(axis=1) + base`` is the margin.
        """
        contributions = np.asarray(self.library.contributions(self.model, self._rows(X)), dtype=float)
        return split_contributions(contributions, self.n_features)

    def _rows(self, X: Any) -> Any:
        """Rows as the library takes them: a frame under the booster's own column names (already in its order)."""
        if isinstance(X, pd.DataFrame) and self.names is not None:
            return X.set_axis(self.names, axis=1)
        return X


class BoosterRegressor(RegressorMixin, BoosterModel):
    """A booster trained on a regression (or ranking, or custom) objective."""

    def predict(self, X: Any) -> np.ndarray:
        """The library's own prediction (the raw score through the objective's link)."""
        return np.asarray(self.library.prediction(self.model, self._rows(X), self.objective), dtype=float)


class BoosterClassifier(ClassifierMixin, BoosterModel):
    """A booster trained on a classification objective, of ``classes`` (in the order of its outputs)."""

    def __init__(self, model: Any, library: _Library, objective: Objective, details: dict, classes: np.ndarray):
        super().__init__(model, library, objective, details)
        self.classes = classes

    @property
    def classes_(self) -> np.ndarray:
        return self.classes

    def predict(self, X: Any) -> np.ndarray:
        """The class of the largest raw score (for a binary model: the positive class when its margin is > 0)."""
        margin = self.decision_function(X)
        best = (margin > 0).astype(int) if margin.ndim == 1 else np.argmax(margin, axis=1)
        return self.classes.take(best)

    @available_if(lambda self: self.objective.probabilities is not None)
    def predict_proba(self, X: Any) -> np.ndarray:
        """Probabilities (n, classes): the library's own, or its margin through the objective's sigmoid or softmax."""
        rows = self._rows(X)
        if self.objective.probabilities == "predict":
            probabilities = np.asarray(self.library.prediction(self.model, rows, self.objective), dtype=float)
        else:
            margin = np.asarray(self.library.margin(self.model, rows), dtype=float)
            probabilities = expit(margin) if self.objective.probabilities == "sigmoid" else softmax(margin, axis=1)
        if probabilities.ndim == 1:
            return np.column_stack([1.0 - probabilities, probabilities])
        return probabilities


def split_contributions(contributions: np.ndarray, n_features: int) -> tuple[np.ndarray, np.ndarray]:
    """Native TreeSHAP output as (values (n, features, outputs), base values (n, outputs)).

    Each library gives, per row and output, one contribution per feature and the expected value
    last: (n, features + 1) for one output, (n, outputs, features + 1) or, from LightGBM,
    (n, outputs * (features + 1)) for several.
    """
    contributions = contributions.reshape(len(contributions), -1, n_features + 1)
    return contributions[:, :, :-1].transpose(0, 2, 1), contributions[:, :, -1]


class _Library:
    """How to read one library's booster: objective, columns, raw scores, predictions and TreeSHAP."""

    name: str
    title: str

    def objective(self, model: Any) -> Objective:
        name = self.objective_name(model)
        classifier = _CLASSIFIERS[self.name].get(name)
        if classifier is not None:
            return Objective(name, classifier[0], classifier[1])
        return Objective(name, "regression", identity=self.identity(name))

    def identity(self, name: str) -> bool:
        """Whether the regression objective ``name`` predicts its raw score (an unknown one: no)."""
        return name in _IDENTITY[self.name]

    def objective_name(self, model: Any) -> str:
        raise NotImplementedError

    def classes(self, model: Any, objective: Objective) -> np.ndarray:
        """The class labels of the outputs: 0..k-1, the labels XGBoost and LightGBM train classifiers on."""
        return np.arange(2 if objective.kind == "binary" else self.n_outputs(model))

    def n_outputs(self, model: Any) -> int:
        raise NotImplementedError

    def n_features(self, model: Any) -> int:
        raise NotImplementedError

    def feature_names(self, model: Any) -> list[str] | None:
        raise NotImplementedError

    def margin(self, model: Any, X: Any) -> np.ndarray:
        raise NotImplementedError

    def prediction(self, model: Any, X: Any, objective: Objective) -> np.ndarray:
        raise NotImplementedError

    def contributions(self, model: Any, X: Any) -> np.ndarray:
        raise NotImplementedError


class _XGBoost(_Library):
    name, title = "xgboost", "XGBoost"

    def objective_name(self, model: Any) -> str:
        learner = json.loads(model.save_config())["learner"]
        if int(learner["learner_model_param"].get("num_target", "1")) > 1:
            raise InvalidInputError(
                "The XGBoost booster predicts several targets; mlflow_explain explains one target (or one "
                "classifier) per model: train one booster per target."
            )
        return learner["objective"]["name"]

    def n_outputs(self, model: Any) -> int:
        return int(json.loads(model.save_config())["learner"]["learner_model_param"]["num_class"])

    def n_features(self, model: Any) -> int:
        return model.num_features()

    def feature_names(self, model: Any) -> list[str] | None:
        return None if model.feature_names is None else list(model.feature_names)

    def margin(self, model: Any, X: Any) -> np.ndarray:
        return model.predict(self._matrix(model, X), output_margin=True)

    def prediction(self, model: Any, X: Any, objective: Objective) -> np.ndarray:
        return model.predict(self._matrix(model, X))

    def contributions(self, model: Any, X: Any) -> np.ndarray:
        return model.predict(self._matrix(model, X), pred_contribs=True)

    @staticmethod
    def _matrix(model: Any, X: Any) -> Any:
        import xgboost

        return xgboost.DMatrix(
            X,
            feature_names=model.feature_names,
            feature_types=model.feature_types,
            enable_categorical=isinstance(X, pd.DataFrame),
        )


class _LightGBM(_Library):
    name, title = "lightgbm", "LightGBM"

    def objective_name(self, model: Any) -> str:
        """The objective the model file records (its first word: 'binary sigmoid:1' is 'binary'), 'custom' if none."""
        for line in model.model_to_string(num_iteration=1).splitlines():
            if line.startswith("objective="):
                return line.removeprefix("objective=").split(" ")[0]
            if line.startswith("Tree="):
                break
        return "custom"

    def n_outputs(self, model: Any) -> int:
        return model.num_model_per_iteration()

    def n_features(self, model: Any) -> int:
        return model.num_feature()

    def feature_names(self, model: Any) -> list[str] | None:
        names = model.feature_name()
        return None if names == [f"Column_{i}" for i in range(len(names))] else list(names)

    def margin(self, model: Any, X: Any) -> np.ndarray:
        return model.predict(X, raw_score=True)

    def prediction(self, model: Any, X: Any, objective: Objective) -> np.ndarray:
        return model.predict(X)

    def contributions(self, model: Any, X: Any) -> np.ndarray:
        return model.predict(X, pred_contrib=True)


class _CatBoost(_Library):
    name, title = "catboost", "CatBoost"

    def objective_name(self, model: Any) -> str:
        if not model.is_fitted():
            raise InvalidInputError(f"The model ({type(model).__name__}) is not fitted; call fit before explaining it.")
        name = str(model.get_all_params()["loss_function"]).split(":")[0]
        if name in _MULTI_TARGET_CATBOOST:
            raise InvalidInputError(
                f"The CatBoost model's loss {name} predicts several targets; mlflow_explain explains one target "
                "(or one classifier) per model."
            )
        return name

    def identity(self, name: str) -> bool:
        return name not in _EXPONENT_CATBOOST

    def classes(self, model: Any, objective: Objective) -> np.ndarray:
        """CatBoost's own class labels (those of the target it was fitted on)."""
        return np.asarray(model.classes_)

    def n_features(self, model: Any) -> int:
        return len(model.feature_names_)

    def feature_names(self, model: Any) -> list[str] | None:
        names = list(model.feature_names_)
        return None if names == [str(i) for i in range(len(names))] else names

    def margin(self, model: Any, X: Any) -> np.ndarray:
        return model.predict(self._pool(model, X), prediction_type="RawFormulaVal")

    def prediction(self, model: Any, X: Any, objective: Objective) -> np.ndarray:
        """Probabilities of a classifier; a regression's raw score, through the exponent for a log link."""
        if objective.kind != "regression":
            kind = "Probability"
        else:
            kind = "RawFormulaVal" if objective.identity else "Exponent"
        return model.predict(self._pool(model, X), prediction_type=kind)

    def contributions(self, model: Any, X: Any) -> np.ndarray:
        return model.get_feature_importance(self._pool(model, X), type="ShapValues")

    @staticmethod
    def _pool(model: Any, X: Any) -> Any:
        import catboost

        return catboost.Pool(X, cat_features=model.get_cat_feature_indices() or None)


_LIBRARIES: dict[str | None, type[_Library]] = {"xgboost": _XGBoost, "lightgbm": _LightGBM, "catboost": _CatBoost}

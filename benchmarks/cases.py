"""The benchmark cases: one fitted model and its validation rows each, built from bundled or generated data."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.datasets import load_breast_cancer, load_diabetes, load_wine, make_regression
from sklearn.ensemble import (
    HistGradientBoostingClassifier,
    HistGradientBoostingRegressor,
    RandomForestClassifier,
    RandomForestRegressor,
)
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.model_selection import train_test_split
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler
from threadpoolctl import threadpool_limits


@dataclasses.dataclass
class Case:
    """A fitted model, the validation rows every tool gets, and what kind of model it is."""

    name: str
    model: Any
    X: pd.DataFrame
    y: np.ndarray
    model_type: str  # "regressor" or "classifier", as mlflow.models.evaluate names it
    family: str  # "tree", "linear" or "pipeline": which targets of issue 7 apply
    small_validation: bool = False

    @property
    def mlflow_model_agnostic(self) -> bool:
        """Whether MLflow's default evaluator explains this model with shap's slow model-agnostic explainer.

        It passes the raw model to ``shap.Explainer`` only when its label list (the unique targets
        and predictions, for regressors too) has at most two values and the model is no Pipeline.
        """
        labels = np.unique(np.concatenate([self.y, np.asarray(self.model.predict(self.X))]))
        return self.family == "pipeline" or len(labels) > 2


def build_cases(lightgbm: bool = True) -> list[Case]:
    """Every case of issue 7, in table order (the LightGBM one only when ``lightgbm`` is importable).

    Models are fitted on one thread: training is not measured, and OpenMP boosting on a busy
    machine can take minutes with more threads. Every measured call runs with the libraries' defaults.
    """
    with threadpool_limits(1):
        return [diabetes_forest(), *boosting(lightgbm), breast_cancer_logistic(), mixed_pipeline(), wine_forest()]


def diabetes_forest() -> Case:
    """A random forest on scikit-learn's diabetes data, with a small validation set (111 rows)."""
    X, y = load_diabetes(return_X_y=True, as_frame=True)
    X_train, X_val, y_train, y_val = train_test_split(X, y.to_numpy(), test_size=0.25, random_state=0)
    model = RandomForestRegressor(n_estimators=100, random_state=0, n_jobs=1).fit(X_train, y_train)
    return Case(
        "random forest, diabetes (small validation set)",
        model,
        X_val.reset_index(drop=True),
        y_val,
        "regressor",
        "tree",
        small_validation=True,
    )


def boosting(lightgbm: bool = True) -> list[Case]:
    """HistGradientBoosting (and LightGBM) regressors on a generated 25,000 x 30 regression."""
    X, y = make_regression(n_samples=25_000, n_features=30, n_informative=15, noise=10.0, random_state=0)
    X = pd.DataFrame(X, columns=[f"f{i}" for i in range(30)])
    X_train, X_val, y_train, y_val = train_test_split(X, y, test_size=0.2, random_state=0)
    X_val = X_val.reset_index(drop=True)
    hist = HistGradientBoostingRegressor(max_iter=200, random_state=0).fit(X_train, y_train)
    cases = [Case("HistGradientBoosting, 25,000 x 30 regression", hist, X_val, y_val, "regressor", "tree")]
    if lightgbm:
        from lightgbm import LGBMRegressor

        booster = LGBMRegressor(n_estimators=200, random_state=0, verbose=-1).fit(X_train, y_train)
        cases.append(Case("LightGBM, 25,000 x 30 regression", booster, X_val, y_val, "regressor", "tree"))
    return cases


def breast_cancer_logistic() -> Case:
    """Logistic regression on scikit-learn's breast cancer data (standardized columns)."""
    X, y = load_breast_cancer(return_X_y=True, as_frame=True)
    X_train, X_val, y_train, y_val = train_test_split(X, y.to_numpy(), test_size=0.3, random_state=0)
    scaler = StandardScaler().fit(X_train)
    X_train = pd.DataFrame(scaler.transform(X_train), columns=X.columns)
    X_val = pd.DataFrame(scaler.transform(X_val), columns=X.columns)
    model = LogisticRegression(max_iter=5000).fit(X_train, y_train)
    return Case("logistic regression, breast cancer", model, X_val, y_val, "classifier", "linear")


def mixed_data(
    n_rows: int = 5000, n_categorical: int = 20, n_numeric: int = 40, seed: int = 0
) -> tuple[pd.DataFrame, np.ndarray]:
    """Generated mixed-type rows: integer-coded categories and numeric columns with 10% missing values.

    The categories are integer codes rather than strings because MLflow's default evaluator skips
    SHAP on non-numeric columns, and the comparison needs it to run.
    """
    rng = np.random.RandomState(seed)
    columns = {f"cat{i}": rng.randint(0, 3 + i % 6, n_rows) for i in range(n_categorical)}
    for i in range(n_numeric):
        values = rng.randn(n_rows)
        values[rng.rand(n_rows) < 0.1] = np.nan
        columns[f"num{i}"] = values
    X = pd.DataFrame(columns)
    signal = (X["cat0"] == 1) * 1.5 - (X["cat1"] == 2) + X["num0"].fillna(0) + 0.5 * X["num1"].fillna(0) ** 2
    y = (signal + 0.5 * rng.randn(n_rows) > 0.5).astype(int).to_numpy()
    return X, y


def mixed_pipeline(n_rows: int = 5000) -> Case:
    """One-hot encoding and imputation in a ColumnTransformer, then gradient boosting, on 60 raw columns."""
    X, y = mixed_data(n_rows)
    categorical = [c for c in X.columns if c.startswith("cat")]
    numeric = [c for c in X.columns if c.startswith("num")]
    preprocessing = ColumnTransformer(
        [
            ("categorical", OneHotEncoder(handle_unknown="ignore"), categorical),
            ("numeric", make_pipeline(SimpleImputer(), StandardScaler()), numeric),
        ]
    )
    model = Pipeline([("preprocess", preprocessing), ("model", HistGradientBoostingClassifier(random_state=0))])
    X_train, X_val, y_train, y_val = train_test_split(X, y, test_size=0.2, random_state=0)
    model.fit(X_train, y_train)
    return Case(
        "pipeline: one-hot + imputation + boosting, 60 raw columns",
        model,
        X_val.reset_index(drop=True),
        y_val,
        "classifier",
        "pipeline",
    )


def wine_forest() -> Case:
    """A multiclass random forest on scikit-learn's wine data (3 classes)."""
    X, y = load_wine(return_X_y=True, as_frame=True)
    X_train, X_val, y_train, y_val = train_test_split(X, y.to_numpy(), test_size=0.3, random_state=0)
    model = RandomForestClassifier(n_estimators=200, random_state=0, n_jobs=1).fit(X_train, y_train)
    return Case("random forest, wine (multiclass)", model, X_val.reset_index(drop=True), y_val, "classifier", "tree")


def memory_case(n_rows: int = 50_000, n_features: int = 100) -> tuple[Any, np.ndarray, np.ndarray]:
    """A ridge regression and ``n_rows`` x ``n_features`` generated rows, for the peak-memory target."""
    X, y = make_regression(n_samples=n_rows, n_features=n_features, n_informative=20, noise=1.0, random_state=0)
    return Ridge().fit(X, y), X, y

"""log_explainer: log a model as an MLflow pyfunc model that answers every row with its prediction and SHAP values.

The logged model (``explainer_model.ExplainerModel``) is served like any other: ``mlflow models serve
-m runs:/<run id>/explainer``, ``mlflow.pyfunc.load_model``, ``mlflow.pyfunc.spark_udf``. It carries
its own copy of this package (``code_paths``), because mlflow-explain is not on PyPI: an environment
MLflow builds for it (``--env-manager virtualenv`` or ``conda``, ``mlflow models build-docker``)
installs the pinned ``pip_requirements`` and imports the plugin from the model itself, and the model
keeps serving with the code it was logged with.
"""

from __future__ import annotations

import importlib.metadata
import json
import logging
import tempfile
import warnings
from pathlib import Path
from typing import Any

import cloudpickle
import mlflow
import numpy as np
import pandas as pd
from mlflow.models import Model, ModelSignature, infer_signature
from mlflow.models.model import ModelInfo
from mlflow.types import ColSpec, Schema
from mlflow.types.schema import AnyType

from .._version import __version__
from ..boosters import booster_estimator, booster_library
from ..config import ConfigSource, load_config
from ..data import column_names, from_polars, read_table, take_rows
from ..errors import InvalidInputError
from ..methods.shap import RowExplainer, row_explainer
from ..models import as_estimator, check_model, detect_task, split_pipeline
from ..publish import tracking
from . import explainer_model

logger = logging.getLogger(__name__)

PACKAGE_DIR = Path(__file__).resolve().parents[1]  # the whole package, copied into the model (code_paths)
ENTRY_FILE = Path(__file__).with_name("entry.py")
# What the served explainer imports besides the model's own libraries (explainer_model and its imports).
SERVED_DISTRIBUTIONS = (
    "mlflow",
    "cloudpickle",
    "numpy",
    "pandas",
    "pyarrow",
    "scipy",
    "scikit-learn",
    "shap",
    "pydantic",
    "annotated-types",
    "PyYAML",
)
_CHECK_ROWS = 20  # rows explained at logging time to check that the explanations add up
ADDITIVITY_TOLERANCE = 1e-6
METADATA_KEYS = ("version", "algorithm", "reason", "output_space", "outputs", "input_types", "max_additivity_error")
_DISTRIBUTIONS = {"sklearn": "scikit-learn"}  # top-level modules whose distribution has another name


def log_explainer(
    model: Any,
    background: pd.DataFrame | np.ndarray | str | Path | None = None,
    name: str = "explainer",
    config: ConfigSource = None,
    run_id: str | None = None,
) -> ModelInfo:
    """Log ``model`` as an MLflow pyfunc model that returns each row's prediction and SHAP values.

    The served model answers ``predict(frame)`` with one row per input row: ``prediction`` (the
    model's own predict), then per model output ``shap:<output>:<raw column>`` and
    ``base_value:<output>``, the columns of ``explain/shap_values.parquet``. Per output, the values
    plus the base value add up to the model's output in the space the model's metadata names
    (``mlflow_explain.output_space``: prediction, probability or margin). The SHAP algorithm is the
    one :func:`mlflow_explain.explain` would choose (tree, linear, or the sampled permutation
    explainer; a Pipeline's final step on its transformed columns, summed back to raw columns),
    built once when the model is loaded.

    Parameters
    ----------
    model : fitted estimator or Pipeline, a native booster (``xgboost.Booster``, ``lightgbm.Booster``, a
        CatBoost model), or any object with ``predict``
    background : DataFrame, array, or path to a CSV/Parquet file, default=None
        Rows like the model's input. They declare the input signature (the raw columns and their
        types), check a Pipeline's column mapping, and hold the background sample the linear and
        permutation explainers need (``shap.background_rows`` rows drawn with ``shap.random_state``:
        the rows ``explain`` draws from the same data). A tree ensemble that is not a Pipeline needs
        none: its columns are then its ``feature_names_in_``, as numbers.
    name : str, default="explainer"
        Name of the logged model (its artifact path in the run).
    config : path, dict or ExplainConfig, default=None
        ``shap.algorithm``, ``shap.background_rows`` and ``shap.random_state`` are read.
    run_id : str, default=None
        Run to log into; default the active run, or a new one.

    Returns
    -------
    mlflow.models.model.ModelInfo
        The logged model: serve it with ``mlflow models serve -m <model_uri> --env-manager local``.

    Raises
    ------
    InvalidInputError
        When the model cannot be explained on its own: it needs background rows, has no classes, or
        its preprocessing or explainer fails on the rows.
    """
    cfg = load_config(config)
    check_model(model)
    given = _read_rows(background)
    model = booster_estimator(model) if booster_library(model) is not None else as_estimator(model, np.array([]))
    task = detect_task(model, np.array([]))
    if task.is_classification and not task.classes:
        raise InvalidInputError(f"The classifier ({type(model).__name__}) has no classes_ to explain.")
    rows = given if given is not None else _zero_row(model)
    names = column_names(rows)
    if isinstance(rows, pd.DataFrame) and _fitted_on_array(model):
        rows = rows.to_numpy()  # the columns by position, as at fit time (a CSV's for a model fitted on arrays)
    try:
        explainer = row_explainer(
            model,
            rows,
            task,
            feature_names=names,
            algorithm=cfg.shap.algorithm,
            background_rows=cfg.shap.background_rows,
            exact_max_features=cfg.shap.exact_max_features,
            random_state=cfg.shap.random_state,
        )
        check = explainer.check(take_rows(rows, np.arange(min(_CHECK_ROWS, rows.shape[0]))))
    except ValueError as err:
        raise InvalidInputError(f"{type(model).__name__} cannot be explained on these rows: {err}.") from err
    if given is None and explainer.algorithm != "tree":
        raise InvalidInputError(
            f"The {explainer.algorithm} explainer of {type(model).__name__} needs background rows; pass background=."
        )
    if check[1] > ADDITIVITY_TOLERANCE:
        logger.warning("mlflow_explain: the explainer's values miss the model's output by up to %g.", check[1])
    settings = explainer_settings(explainer, rows, *check)
    with tempfile.TemporaryDirectory(prefix="mlflow_explain_explainer_") as folder:
        artifacts = _write_artifacts(Path(folder), model, explainer, settings)
        with tracking.target_run(run_id) as target_run_id, warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*input example was not provided")  # the signature is given
            info = Model.log(
                artifact_path=None,
                name=name,
                flavor=mlflow.pyfunc,
                run_id=target_run_id,
                python_model=str(ENTRY_FILE),
                artifacts=artifacts,
                code_paths=[str(PACKAGE_DIR)],
                signature=explainer_signature(explainer),
                pip_requirements=explainer_requirements(model),
                metadata={"mlflow_explain": {key: settings[key] for key in METADATA_KEYS}},
            )
    logger.info("mlflow_explain: %s SHAP explainer logged as %s.", explainer.algorithm, info.model_uri)
    return info


def explainer_settings(
    explainer: RowExplainer, rows: pd.DataFrame | np.ndarray, output_space: str, additivity_error: float
) -> dict:
    """What ``explainer.json`` holds: enough to rebuild the explainer (no shap object), check requests and
    read its answers."""
    frame = rows if isinstance(rows, pd.DataFrame) else pd.DataFrame(rows, columns=explainer.feature_names)
    return {
        "settings_version": explainer_model.SETTINGS_VERSION,
        "version": __version__,
        "task": {"kind": explainer.task.kind, "classes": _plain(explainer.task.classes)},
        "feature_names": explainer.feature_names,
        "as_array": not isinstance(rows, pd.DataFrame),
        "input_types": _input_types(frame),
        "categories": {
            str(name): _plain(column.cat.categories)
            for name, column in frame.items()
            if isinstance(column.dtype, pd.CategoricalDtype)
        },
        "algorithm": explainer.algorithm,
        "reason": explainer.reason,
        "origins": explainer.origins,
        "random_state": explainer.random_state,
        "outputs": explainer.output_names,
        "output_space": output_space,
        "max_additivity_error": additivity_error,
        "n_background": 0 if explainer.background is None else len(explainer.background),
    }


def explainer_signature(explainer: RowExplainer) -> ModelSignature:
    """The raw columns as inputs, and the answer's columns as outputs.

    The inputs are declared of any type and optional, so that MLflow passes every request on and the
    explainer itself names the missing and wrongly typed columns in one sentence (their types are in
    the model's metadata, ``mlflow_explain.input_types``).
    """
    inputs = Schema([ColSpec(AnyType(), name, required=False) for name in explainer.feature_names])
    task = explainer.task
    example = {
        column: [0.0] for column in explainer_model.answer_columns(explainer.feature_names, explainer.output_names)
    }
    example[explainer_model.PREDICTION] = np.asarray(task.classes[:1] if task.is_classification else [0.0])
    return ModelSignature(inputs=inputs, outputs=_inferred_schema(pd.DataFrame(example)))


def explainer_requirements(model: Any) -> list[str]:
    """Pinned pip requirements of the served explainer: what it imports, and the libraries of the model's parts."""
    names = set(SERVED_DISTRIBUTIONS) | _model_distributions(model)
    versions = {name: _version(name) for name in names}
    return sorted(f"{name}=={version}" for name, version in versions.items() if version is not None)


def _model_distributions(model: Any) -> set[str]:
    """The distributions the model's objects come from (a Pipeline's steps, a wrapped object), by their modules."""
    objects = [model, getattr(model, "model", None)]
    if hasattr(model, "get_params"):
        objects += [value for value in model.get_params(deep=True).values() if hasattr(value, "get_params")]
    modules = {type(item).__module__.split(".")[0] for item in objects if item is not None}
    return {_DISTRIBUTIONS.get(module, module) for module in modules - {PACKAGE_DIR.name, "builtins", "__main__"}}


def _input_types(frame: pd.DataFrame) -> dict[str, str]:
    """Each column's MLflow type (double, long, string, boolean...), as MLflow infers a signature."""
    return {spec.name: spec.type.name for spec in _inferred_schema(frame).inputs}


def _inferred_schema(frame: pd.DataFrame) -> Schema:
    with warnings.catch_warnings():  # the hint that integer columns cannot hold missing values: requests are cast
        warnings.simplefilter("ignore", UserWarning)
        return infer_signature(frame).inputs


def _plain(values: Any) -> list:
    """Labels as JSON takes them (numpy scalars as Python ones)."""
    return [value.item() if isinstance(value, np.generic) else value for value in values]


def _version(distribution: str) -> str | None:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None


def _read_rows(background: Any) -> pd.DataFrame | np.ndarray | None:
    """The background rows as a frame (index dropped) or an array; a file is read, a polars frame converted."""
    background = from_polars(background)
    if background is None:
        return None
    if isinstance(background, (str, Path)):
        return read_table(background)
    if isinstance(background, pd.DataFrame):
        return background.reset_index(drop=True)
    return np.asarray(background)


def _fitted_on_array(model: Any) -> bool:
    return hasattr(model, "n_features_in_") and not hasattr(model, "feature_names_in_")


def _zero_row(model: Any) -> pd.DataFrame:
    """Without background rows: one row of zeros in a plain model's input columns, to choose and check the explainer.

    A Pipeline (whose raw columns may be of any type, and whose column mapping is verified on rows) or a
    model that does not record its input width needs real rows.
    """
    preprocessor, _ = split_pipeline(model)
    n_features = getattr(model, "n_features_in_", None)
    if preprocessor is not None or n_features is None:
        raise InvalidInputError(
            f"log_explainer needs background rows for a {type(model).__name__}: they declare its input columns "
            "and check how they reach the model; pass background=."
        )
    names = getattr(model, "feature_names_in_", None)
    columns = [str(name) for name in names] if names is not None else [f"x{i}" for i in range(n_features)]
    return pd.DataFrame(np.zeros((1, len(columns))), columns=columns)


def _write_artifacts(folder: Path, model: Any, explainer: RowExplainer, settings: dict) -> dict[str, str]:
    """The explainer's artifacts written under ``folder``: name -> path, as ``Model.log`` takes them."""
    paths = {name: folder / name for name in (explainer_model.MODEL_FILE, explainer_model.SETTINGS_FILE)}
    with paths[explainer_model.MODEL_FILE].open("wb") as stream:
        cloudpickle.dump(model, stream)
    paths[explainer_model.SETTINGS_FILE].write_text(json.dumps(settings, indent=2, allow_nan=True), encoding="utf-8")
    if explainer.background is not None:
        paths[explainer_model.BACKGROUND_FILE] = folder / explainer_model.BACKGROUND_FILE
        background = explainer.background
        frame = (
            background
            if isinstance(background, pd.DataFrame)
            else pd.DataFrame(background, columns=settings["feature_names"])
        )
        frame.reset_index(drop=True).to_parquet(paths[explainer_model.BACKGROUND_FILE], index=False)
    return {name: str(path) for name, path in paths.items()}

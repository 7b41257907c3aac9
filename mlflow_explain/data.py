"""Validation data: read, split off the target, check against the model, sample."""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .config import ValidationConfig
from .errors import InvalidInputError, did_you_mean, listed
from .text import VECTORIZER_NAMES, takes_texts, texts_frame

logger = logging.getLogger(__name__)


@dataclasses.dataclass
class ValidationData:
    """Rows the model is explained on, in the layout the model expects."""

    X: pd.DataFrame | np.ndarray
    y: np.ndarray  # (n_rows,), or (n_rows, n_outputs) for a multi-output regressor
    sample_weight: np.ndarray | None
    feature_names: list[str]
    target_names: list[str] | None = None  # the outputs' names of a 2-D target (its frame's columns, else y0, y1...)
    row_ids: np.ndarray | None = None  # position of each row in the X passed in (None: the rows are all of it)
    index_labels: np.ndarray | None = None  # each row's index label, when the X passed in was a DataFrame
    n_rows_passed: int | None = None  # rows of the X passed in, before validation.max_rows (None: n_rows)
    notes: list[str] = dataclasses.field(default_factory=list)  # what was done to the rows (caps), for the user

    @property
    def n_rows(self) -> int:
        return self.X.shape[0]

    def source_rows(self, positions: np.ndarray) -> np.ndarray:
        """Positions in the X passed in of the rows at ``positions`` of ``self.X``."""
        positions = np.asarray(positions, dtype=np.int64)
        return positions if self.row_ids is None else self.row_ids[positions]

    def source_labels(self, positions: np.ndarray) -> np.ndarray | None:
        """Index labels of the rows at ``positions`` of ``self.X`` (None when X was not a DataFrame)."""
        return None if self.index_labels is None else self.index_labels[np.asarray(positions, dtype=np.int64)]

    def frame(self, positions: np.ndarray | None = None) -> pd.DataFrame:
        """The rows (all, or those at ``positions``) as a DataFrame with the feature names."""
        rows = self.X if positions is None else take_rows(self.X, positions)
        if isinstance(rows, pd.DataFrame):
            return rows.reset_index(drop=True)
        return pd.DataFrame(rows, columns=self.feature_names)


def take_rows(X: pd.DataFrame | np.ndarray, positions: np.ndarray) -> pd.DataFrame | np.ndarray:
    """Rows of a frame or an array by position."""
    return X.iloc[positions] if isinstance(X, pd.DataFrame) else X[positions]


def take_columns(X: pd.DataFrame | np.ndarray, takes: list[np.ndarray]) -> pd.DataFrame | np.ndarray:
    """Rows assembled column by column: column p of the result is column p of ``X`` at positions ``takes[p]``.

    Every array in ``takes`` has the same length; a frame keeps its columns' dtypes.
    """
    if isinstance(X, pd.DataFrame):
        columns = [column.array.take(rows) for (_, column), rows in zip(X.items(), takes, strict=True)]
        return pd.DataFrame(dict(enumerate(columns)), copy=False).set_axis(X.columns, axis=1)
    stacked = np.empty((len(takes[0]) if takes else 0, X.shape[1]), dtype=X.dtype)
    for position, rows in enumerate(takes):
        stacked[:, position] = X[rows, position]
    return stacked


def column_names(X: pd.DataFrame | np.ndarray) -> list[str]:
    """Feature names: a frame's columns as text, or x0, x1, ... for an array (scikit-learn's convention)."""
    return [str(c) for c in X.columns] if isinstance(X, pd.DataFrame) else [f"x{i}" for i in range(X.shape[1])]


def read_table(path: str | Path) -> pd.DataFrame:
    """Read a CSV or Parquet file of validation rows."""
    path = Path(path)
    if not path.exists():
        raise InvalidInputError(f"Validation data file {path} does not exist.")
    if path.suffix.lower() in {".parquet", ".pq"}:
        return pd.read_parquet(path)
    if path.suffix.lower() in {".csv", ".txt"}:
        return pd.read_csv(path)
    raise InvalidInputError(f"Validation data file {path} must be .csv or .parquet, not {path.suffix!r}.")


def load_validation_data(
    model: Any,
    X: Any,
    y: Any = None,
    *,
    target: str | None = None,
    sample_weight: Any = None,
    config: ValidationConfig,
    input_names: list[str] | None = None,
) -> ValidationData:
    """Check the validation rows against the model and return them ready to explain.

    ``X`` may be a pandas or polars DataFrame, an array, a CSV/Parquet path, or None (then
    ``config.path``); the target is ``y`` or the column ``target`` (or ``config.target``) of ``X``.
    A polars frame or series (``X``, ``y``, ``sample_weight``) is converted to pandas once, here
    (polars categoricals become pandas categoricals).

    A frame's columns are matched to the model's by name: the names the model was fitted on
    (``feature_names_in_``, as LightGBM spells them too), else ``input_names`` (a logged model's
    signature). A model fitted on an array that nothing names takes a DataFrame in its column order,
    but a file's columns must then be x0, x1, ... in order: a file's column order promises nothing,
    so any other names raise InvalidInputError.
    """
    from_file = isinstance(X if X is not None else config.path, (str, Path))
    X = from_polars(_read_if_path(X if X is not None else config.path))
    y, sample_weight = from_polars(y), from_polars(sample_weight)
    target = target if target is not None else config.target
    if target is not None and y is None:
        X, y = _split_target(X, target)
    labeled = not from_file and isinstance(X, (pd.DataFrame, pd.Series))  # index labels point at the user's rows
    X = texts_frame(X) if takes_texts(model) else _as_2d(X)
    labels = X.index.to_numpy() if labeled else None
    if X.shape[0] == 0:
        raise InvalidInputError("The validation data is empty (0 rows).")
    if X.shape[1] == 0:
        raise InvalidInputError("The validation data has no feature columns.")
    X, names = _match_model_columns(model, X, input_names, from_file)
    target_names = _target_names(y)
    y = _as_target(y, X.shape[0])
    weights = None if sample_weight is None else np.asarray(sample_weight, dtype=float).ravel()
    if weights is not None and weights.shape[0] != X.shape[0]:
        raise InvalidInputError(
            f"sample_weight has {weights.shape[0]} values but the validation data has {X.shape[0]} rows."
        )
    n_passed = X.shape[0]
    kept = _capped_positions(n_passed, config)
    if kept is None:
        return ValidationData(
            X=X, y=y, sample_weight=weights, feature_names=names, target_names=target_names, index_labels=labels
        )
    note = (
        f"Explained on a seeded sample of {len(kept)} of the {n_passed} validation rows passed "
        f"(validation.max_rows={config.max_rows})."
    )
    logger.warning("mlflow_explain: %s", note)
    return ValidationData(
        X=take_rows(X, kept),
        y=y[kept],
        sample_weight=None if weights is None else weights[kept],
        feature_names=names,
        target_names=target_names,
        row_ids=kept,
        index_labels=None if labels is None else labels[kept],
        n_rows_passed=n_passed,
        notes=[note],
    )


def from_polars(values: Any) -> Any:
    """A polars DataFrame or Series as its pandas equivalent; anything else as it is.

    Told by its type's module, so that polars is never imported here.
    """
    if type(values).__module__.startswith("polars") and hasattr(values, "to_pandas"):
        return values.to_pandas()
    return values


def _read_if_path(X: Any) -> Any:
    if X is None:
        raise InvalidInputError("No validation data: pass X, or set validation.path in the config.")
    if isinstance(X, (str, Path)):
        return read_table(X)
    return X


def _split_target(X: Any, target: str) -> tuple[pd.DataFrame, np.ndarray]:
    if not isinstance(X, pd.DataFrame):
        raise InvalidInputError(
            f"Target column {target!r} was named, but the validation data is not a DataFrame with named columns."
        )
    if target not in X.columns:
        columns = list(X.columns)
        raise InvalidInputError(
            f"Target column {target!r} is not in the validation data{did_you_mean(target, columns)}; "
            f"its columns are: {listed(columns)}."
        )
    return X.drop(columns=[target]), X[target].to_numpy()


def _as_2d(X: Any) -> pd.DataFrame | np.ndarray:
    if isinstance(X, pd.DataFrame):
        return X
    X = _from_tensor(X)
    if isinstance(X, pd.Series):
        if pd.api.types.infer_dtype(X, skipna=True) == "string":
            raise InvalidInputError(
                "X is a single column of text (a Series of strings), but the model does not start with a text "
                f"vectorizer ({VECTORIZER_NAMES}); pass the table of columns the model was fitted on."
            )
        raise InvalidInputError("X is a single Series (1-D); pass a DataFrame, e.g. X.to_frame(), for one feature.")
    try:
        array = np.asarray(X)
    except Exception as err:
        raise InvalidInputError(
            f"X of type {type(X).__name__} cannot be read as a table of rows and features."
        ) from err
    if array.ndim != 2:
        raise InvalidInputError(
            f"X must be 2-D (rows x features), got an array of shape {array.shape}; "
            "for a single feature reshape it with X.reshape(-1, 1)."
        )
    return array


# How the errors name the source of the model's column names: (columns it lacks, columns it has too many).
_TRAINED_ON = ("the model was trained on", "the model was not trained on")
_SIGNATURE = ("the model's signature names", "the model's signature does not name")


def _match_model_columns(
    model: Any, X: pd.DataFrame | np.ndarray, input_names: list[str] | None, from_file: bool
) -> tuple[pd.DataFrame | np.ndarray, list[str]]:
    """X in the column order and layout the model was fitted on, and the feature names to report."""
    fitted = getattr(model, "feature_names_in_", None)
    if fitted is not None:
        names = [str(n) for n in fitted]
        if isinstance(X, pd.DataFrame):
            return _in_model_order(model, X, names, _TRAINED_ON)
        if X.shape[1] == len(names):
            return pd.DataFrame(X, columns=names), names
    signed = fitted is None and input_names is not None
    if signed and isinstance(X, pd.DataFrame):
        X, reported = _in_model_order(model, X, input_names, _SIGNATURE)
    else:
        reported = input_names if signed and X.shape[1] == len(input_names) else column_names(X)
    expected = getattr(model, "n_features_in_", None)
    if expected is not None and X.shape[1] != expected:
        raise InvalidInputError(
            f"The validation data has {X.shape[1]} feature columns but the model expects {expected}."
        )
    if expected is None or not isinstance(X, pd.DataFrame):
        return X, reported
    if not signed:
        _check_unnamed_order(reported, from_file)
    if all(map(pd.api.types.is_numeric_dtype, X.dtypes)):
        return X.to_numpy(), reported  # fitted on an array: give it one, keep the frame's names
    return X, reported


def _in_model_order(
    model: Any, X: pd.DataFrame, names: list[str], source: tuple[str, str]
) -> tuple[pd.DataFrame, list[str]]:
    """The frame's columns in the order of the model's ``names`` (the frame's own names kept), and those.

    LightGBM records a name with its spaces replaced by underscores (``mean radius`` is
    ``mean_radius``), so for a LightGBM model (or a ``lightgbm.Booster``) the frame's names are
    compared spelled that way.
    """
    columns = [str(c) for c in X.columns]
    spelled = columns
    if _lightgbm(model) and len({c.replace(" ", "_") for c in columns}) == len(columns):
        spelled = [c.replace(" ", "_") for c in columns]
    missing = [n for n in names if n not in spelled]
    extra = [c for c, spelling in zip(columns, spelled, strict=True) if spelling not in names]
    if missing:
        hints = [f"{name}{did_you_mean(name, extra)}" for name in missing]
        raise InvalidInputError(f"The validation data lacks column(s) {source[0]}: {listed(hints)}.")
    if extra:
        raise InvalidInputError(f"The validation data has column(s) {source[1]}: {listed(extra)}.")
    order = [spelled.index(n) for n in names]
    X = X.set_axis(columns, axis=1)
    return (X if order == list(range(len(columns))) else X.iloc[:, order]), [columns[i] for i in order]


def _lightgbm(model: Any) -> bool:
    """A LightGBM model, or an adapter around one (``boosters.BoosterModel`` keeps it as ``model``)."""
    return any(type(item).__module__.startswith("lightgbm") for item in (model, getattr(model, "model", None)))


def _check_unnamed_order(columns: list[str], from_file: bool) -> None:
    """Columns of a frame for a model that records no names: a file's must be x0, x1, ... (or 0, 1, ...) in order.

    A DataFrame given in code is taken in its order (as the model was fitted on its values); the
    column order of a file promises nothing, so there it must be spelled out.
    """
    if not from_file:
        logger.info("The model records no column names: the DataFrame's columns are taken in their order.")
        return
    if columns in ([f"x{i}" for i in range(len(columns))], [str(i) for i in range(len(columns))]):
        return
    shown = ", ".join(columns[:5]) + (", ..." if len(columns) > 5 else "")
    raise InvalidInputError(
        f"The model was fitted on an array and no signature names its inputs, so the order of the file's "
        f"columns ({shown}) cannot be checked; log the model with a signature (mlflow.models.infer_signature "
        f"of the training DataFrame), fit it on a DataFrame, or name the columns x0, x1, ... in the model's order."
    )


def _from_tensor(values: Any) -> Any:
    """A PyTorch tensor (on any device, with or without gradients) as a numpy array; anything else as it is.

    Told by its type's module, so that torch is never imported here.
    """
    if type(values).__module__.startswith("torch") and hasattr(values, "detach"):
        return values.detach().cpu().numpy()
    return values


def _as_target(y: Any, n_rows: int) -> np.ndarray:
    if y is None:
        raise InvalidInputError("No target given: pass y, or the name of the target column with target=.")
    y = y.to_numpy() if isinstance(y, (pd.Series, pd.DataFrame)) else np.asarray(_from_tensor(y))
    if y.ndim == 2 and y.shape[1] == 1:
        y = y.ravel()
    if y.ndim > 2:
        raise InvalidInputError(f"The target must be one column, or one per output (2-D), got shape {y.shape}.")
    if y.shape[0] != n_rows:
        raise InvalidInputError(f"The target has {y.shape[0]} values but the validation data has {n_rows} rows.")
    missing = int(pd.isna(y).sum())
    if missing:
        raise InvalidInputError(f"The target has {missing} missing (NaN) value(s); drop those rows before explaining.")
    return y


def _target_names(y: Any) -> list[str] | None:
    """The output names of a 2-D target: a frame's columns, else y0, y1, ...; None for a single column."""
    shape = np.shape(y)
    if len(shape) != 2 or shape[1] == 1:
        return None
    return [str(c) for c in y.columns] if isinstance(y, pd.DataFrame) else [f"y{k}" for k in range(shape[1])]


def _capped_positions(n_rows: int, config: ValidationConfig) -> np.ndarray | None:
    """The sorted positions of a seeded sample of ``validation.max_rows`` rows; None when every row is kept."""
    if n_rows <= config.max_rows:
        return None
    return np.sort(np.random.RandomState(config.random_state).choice(n_rows, config.max_rows, replace=False))

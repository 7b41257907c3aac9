"""Which fits autolog explains: a supervised model trained by the user's own code, with a target.

A fit called by scikit-learn, joblib, threadpoolctl, SciPy, XGBoost, LightGBM, CatBoost, Lightning, Keras, shap,
MLflow or this plugin is the library's business (the label encoder inside ``f1_score``, the trees of an
``IsolationForest`` on joblib's worker threads, MLflow's training metrics, a search's candidates);
only the code that called ``fit`` counts, so this holds on any thread. Fits nested inside another
wrapped fit are told apart by the caller (autolog's nesting depth), not here.
"""

from __future__ import annotations

import sys
from types import FrameType
from typing import Any

_LIBRARIES = frozenset(
    {"sklearn", "joblib", "threadpoolctl", "scipy", "shap", "mlflow", "mlflow_explain"}
    | {"xgboost", "lightgbm", "catboost"}
    | {"lightning", "pytorch_lightning", "lightning_fabric"}  # a Tuner's fits (lr_find, scale_batch_size)
    | {"keras"}
    | {"pyspark"}  # a Pipeline's stage fits, a CrossValidator's candidates on its worker threads
)
_MLFLOW_PATCH = ("mlflow.utils.autologging_utils.safety", "safe_patch_function")  # MLflow's patched method
_SUPERVISED = frozenset({"classifier", "regressor"})


def called_by_user(caller: FrameType | None, estimator: Any) -> bool:
    """True when the code that called ``estimator.fit`` (frame ``caller``) is not a library's.

    When MLflow's autologging patch wraps this ``fit``, its frames are looked through: what counts
    is the code that called MLflow's patched ``fit`` of this same estimator. A fit MLflow makes on
    its own (of any other estimator, or outside such a patch) is MLflow's.
    """
    frame = outside_mlflow_patch(caller, estimator)
    return frame is not None and _package(frame) not in _LIBRARIES


def outside_mlflow_patch(caller: FrameType | None, first_argument: Any) -> FrameType | None:
    """The frame that made a call whose wrapper was called from frame ``caller``: ``caller`` itself, or, when
    MLflow's autologging patch made it, the frame that called that patch with the same first argument (the
    estimator of a ``fit``, the ``params`` of ``xgboost.train``); None when MLflow made the call on its own."""
    frame = caller
    while frame is not None and _package(frame) == "mlflow":
        frame = _caller_of_mlflow_patch(frame, first_argument)
    return frame


def _caller_of_mlflow_patch(frame: FrameType, first_argument: Any) -> FrameType | None:
    """From a frame of MLflow's, the frame that called MLflow's patched function with ``first_argument``; else None."""
    while frame is not None and _package(frame) == "mlflow":
        if (frame.f_globals.get("__name__"), frame.f_code.co_name) == _MLFLOW_PATCH:
            patched = frame.f_locals.get("args") or (None,)
            return frame.f_back if patched[0] is first_argument else None
        frame = frame.f_back
    return None


def _package(frame: FrameType) -> str:
    return (frame.f_globals.get("__name__") or "").partition(".")[0]


def skip_reason(estimator: Any, args: tuple, kwargs: dict) -> str | None:
    """Why a user's ``estimator.fit(*args, **kwargs)`` is not explained, or None when it is to be.

    Explained: a classifier or regressor by scikit-learn's tags (a Pipeline or a search ending in
    one, an XGBoost or LightGBM model included) fitted with a target.
    """
    target = args[1] if len(args) > 1 else kwargs.get("y")
    if target is None:
        return "fitted without a target"
    from sklearn.utils import get_tags

    try:
        kind = get_tags(estimator).estimator_type
    except Exception:
        kind = None
    if kind not in _SUPERVISED:
        if kind is None:
            kind = "transformer" if hasattr(estimator, "transform") else "model without an estimator type"
        described = kind.replace("_", " ")
        return f"{'an' if described[0] in 'aeiou' else 'a'} {described}, not a classifier or regressor"
    return None


def model_to_explain(estimator: Any) -> Any | None:
    """The fitted model to explain: a search's best estimator (None after ``refit=False``), or the estimator."""
    search = sys.modules.get("sklearn.model_selection._search")
    if search is not None and isinstance(estimator, search.BaseSearchCV):
        return getattr(estimator, "best_estimator_", None)
    return estimator

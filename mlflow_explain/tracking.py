"""The one module that talks to MLflow: run resolution, metrics, tags and artifact upload."""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
from mlflow.entities import Metric, RunTag
from mlflow.tracking import MlflowClient

from .keys import key_parts
from .results import Explanation

logger = logging.getLogger(__name__)

STATUS_TAG = "mlflow_explain.status"
ERROR_FILE = "error.txt"
VERSION_TAG = "mlflow_explain.version"
_BATCH = 1000  # MLflow's limit of entities per log_batch call


@contextlib.contextmanager
def target_run(run_id: str | None = None) -> Iterator[str]:
    """The run to log into: ``run_id``, else the active run, else a new run ended afterwards."""
    if run_id is not None:
        yield run_id
        return
    active = mlflow.active_run()
    if active is not None:
        yield active.info.run_id
        return
    with mlflow.start_run(run_name="mlflow_explain") as run:
        logger.info("No active MLflow run: logging the explanation to new run %s.", run.info.run_id)
        yield run.info.run_id


def log_explanation(explanation: Explanation, directory: Path, run_id: str, artifact_dir: str) -> None:
    """Log metrics, tags and every file under ``directory`` into run ``run_id``."""
    client = MlflowClient()
    version = explanation.versions.get("mlflow_explain", "unknown")
    log_metrics(client, run_id, explanation_metrics(explanation))
    client.log_artifacts(run_id, str(directory), artifact_path=artifact_dir)
    client.log_batch(run_id, tags=[RunTag(STATUS_TAG, explanation.status), RunTag(VERSION_TAG, version)])


def log_failure(run_id: str, message: str, artifact_dir: str) -> None:
    """Mark a run whose explanation failed: status tag ``failed`` and the message in error.txt."""
    client = MlflowClient()
    client.log_text(run_id, message + "\n", f"{artifact_dir}/{ERROR_FILE}")
    client.set_tag(run_id, STATUS_TAG, "failed")


def load_logged_model(model_uri: str) -> tuple[Any, str | None]:
    """Load a logged model, unwrapped to the raw estimator where the flavor allows; and its run id.

    scikit-learn, XGBoost and LightGBM models come back as themselves (so tree models take the
    fast SHAP path); any other pyfunc model is wrapped so that ``predict`` works.
    """
    pyfunc_model = mlflow.pyfunc.load_model(model_uri)
    run_id = pyfunc_model.metadata.run_id
    try:
        return pyfunc_model.get_raw_model(), run_id
    except NotImplementedError:
        logger.info("Model %s has no raw model to unwrap; explaining its pyfunc predict().", model_uri)
        return PyfuncPredictor(pyfunc_model), run_id


class PyfuncPredictor:
    """A pyfunc model seen as a fitted estimator with ``predict`` (no probabilities)."""

    def __init__(self, pyfunc_model: Any):
        self.pyfunc_model = pyfunc_model

    def predict(self, X: Any) -> np.ndarray:
        predictions = self.pyfunc_model.predict(X)
        return np.asarray(predictions).reshape(len(X), -1)[:, 0] if np.ndim(predictions) > 1 else np.asarray(predictions)


def log_metrics(client: MlflowClient, run_id: str, metrics: dict[str, float]) -> None:
    """Log ``metrics`` at step 0 in batches of MLflow's maximum size."""
    now = int(time.time() * 1000)
    entries = [Metric(key, float(value), now, 0) for key, value in metrics.items()]
    for start in range(0, len(entries), _BATCH):
        client.log_batch(run_id, metrics=entries[start:start + _BATCH])


def explanation_metrics(explanation: Explanation) -> dict[str, float]:
    """Every metric of an explanation, keyed as DESIGN.md lays out."""
    metrics: dict[str, float] = {}
    features = key_parts(explanation.reported_features)
    table = explanation.importances
    if explanation.permutation is not None:
        primary = explanation.permutation.primary_scorer
        scorers = key_parts(explanation.permutation.scorer_names)
        for row in table[table["method"] == "permutation"].itertuples():
            suffix = "" if row.output == primary else f".{scorers[row.output]}"
            metrics[f"permutation_importance{suffix}/{features[row.feature]}"] = row.importance
            metrics[f"permutation_importance_std{suffix}/{features[row.feature]}"] = row.std
        for scorer, score in explanation.permutation.baseline_scores.items():
            metrics[f"explain/baseline_score.{scorers[scorer]}"] = score
        metrics["explain/rows_permutation"] = explanation.permutation.n_rows
    if explanation.shap is not None:
        classes = key_parts(explanation.shap.output_names)
        for row in table[table["method"] == "shap"].itertuples():
            suffix = "" if row.output == "all" else f".{classes[row.output]}"
            metrics[f"shap_mean_abs{suffix}/{features[row.feature]}"] = row.importance
        metrics["explain/rows_shap"] = len(explanation.shap.row_positions)
        if explanation.shap.max_additivity_error is not None:
            metrics["explain/shap_max_additivity_error"] = explanation.shap.max_additivity_error
    for name, seconds in explanation.timings.items():
        metrics[f"explain/time_{name}_s"] = seconds
    metrics["explain/rows_validation"] = explanation.n_rows
    return metrics

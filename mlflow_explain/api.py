"""The explicit entry point: explain a fitted model on validation data and log it to MLflow."""

from __future__ import annotations

import logging
import tempfile
import time
from pathlib import Path
from typing import Any

from . import spool, tracking
from .artifacts import write_artifacts
from .compare import baseline_drift
from .config import ConfigSource, ExplainConfig, load_config
from .data import load_validation_data
from .engine import ExplainRequest, guarded, run
from .models import as_estimator, check_model, detect_task
from .results import Explanation

logger = logging.getLogger(__name__)


def explain(
    model: Any,
    X: Any = None,
    y: Any = None,
    *,
    target: str | None = None,
    sample_weight: Any = None,
    config: ConfigSource = None,
    run_id: str | None = None,
) -> Explanation:
    """Explain a fitted model on validation data and log everything into an MLflow run.

    Parameters
    ----------
    model : fitted estimator, or any object with ``predict``
        A scikit-learn estimator or Pipeline, or an XGBoost / LightGBM scikit-learn model; any other
        object that only predicts (``predict``, and ``predict_proba`` for a classifier) is explained
        model-agnostically (see ``models.as_estimator``).
    X : DataFrame, array, or path to a CSV/Parquet file, default=None
        Validation rows; None reads ``validation.path`` from the config.
    y : array-like, default=None
        Targets; or name the target column of ``X`` with ``target``.
    target : str, default=None
        Name of the target column inside ``X`` (default ``validation.target``).
    sample_weight : array-like, default=None
        Row weights for the permutation scorers.
    config : path, dict or ExplainConfig, default=None
        Merged over ``configs/default.yaml``.
    run_id : str, default=None
        Run to log into; default the active run, or a new one.

    Returns
    -------
    Explanation
        Every result, with its status ("ok", "partial" or "failed").

    Raises
    ------
    InvalidInputError
        When the model or the data cannot be explained; the message names the problem.
    """
    return explain_logged(model, X, y, target=target, sample_weight=sample_weight, config=config, run_id=run_id)[0]


def explain_logged(
    model: Any,
    X: Any = None,
    y: Any = None,
    *,
    target: str | None = None,
    sample_weight: Any = None,
    config: ConfigSource = None,
    run_id: str | None = None,
    input_names: list[str] | None = None,
) -> tuple[Explanation, list[str]]:
    """``explain()``, also returning the paths of the files it logged (relative to ``logging.artifact_dir``).

    Parameters and errors are those of ``explain()``, and ``input_names``: the model's input columns in
    order when the model does not record them itself (a logged model's signature). The list is empty
    when nothing reached MLflow.
    """
    started = time.perf_counter()
    cfg = load_config(config)
    check_model(model)
    data = load_validation_data(
        model, X, y, target=target, sample_weight=sample_weight, config=cfg.validation, input_names=input_names
    )
    model = as_estimator(model, data.y)
    task = detect_task(model, data.y)
    explanation = run(ExplainRequest(model=model, data=data, task=task, config=cfg))
    return explanation, log_to_run(explanation, cfg, run_id, started)


def log_to_run(explanation: Explanation, cfg: ExplainConfig, run_id: str | None, started: float) -> list[str]:
    """Compare with the baseline run, write the artifacts and log everything into the run.

    When MLflow cannot take the explanation, it is spooled to ``logging.spool_dir`` (or the failure
    is recorded); the caller's training is never broken (unless ``on_error: raise``).

    Parameters
    ----------
    explanation : Explanation
        The computed results (of any engine).
    cfg : ExplainConfig
    run_id : str or None
        Run to log into; default the active run, or a new one.
    started : float
        ``time.perf_counter()`` when the explanation started, for ``explain/time_total_s``.

    Returns
    -------
    list of str
        The files logged, as paths relative to ``logging.artifact_dir``; empty when MLflow was unreachable.
    """
    with tempfile.TemporaryDirectory(prefix="mlflow_explain_") as folder:
        try:
            target_run_id, files = _log(explanation, Path(folder), run_id, cfg, started)
        except Exception as err:
            if cfg.on_error == "raise" or not tracking.unreachable(err):
                raise
            _tracking_failed(explanation, Path(folder), run_id, cfg, err)
            return []
    logger.info(
        "mlflow_explain: explanation of %s logged to run %s (status %s).",
        explanation.model_type,
        target_run_id,
        explanation.status,
    )
    return files


def _log(
    explanation: Explanation, folder: Path, run_id: str | None, cfg: ExplainConfig, started: float
) -> tuple[str, list[str]]:
    """Compare with the baseline, write the artifacts and log everything into the target run; the run and files."""
    with tracking.target_run(run_id) as target_run_id:
        importances = explanation.importances
        if cfg.compare.enabled and not importances.empty:
            explanation.drift = guarded(
                explanation,
                "compare",
                cfg.on_error,
                baseline_drift,
                target_run_id,
                importances,
                cfg,
                explanation.reported_features,
            )
        files = write_artifacts(explanation, folder, cfg)
        explanation.timings["total"] = time.perf_counter() - started
        tracking.log_explanation(explanation, folder, target_run_id, cfg.logging.artifact_dir)
    return target_run_id, [path.relative_to(folder).as_posix() for path in files]


def _tracking_failed(
    explanation: Explanation, folder: Path, run_id: str | None, cfg: ExplainConfig, err: Exception
) -> None:
    """MLflow could not take the explanation: spool it to ``logging.spool_dir``, or record the failure."""
    message = f"{type(err).__name__}: {err}"
    if not cfg.logging.spool_dir:
        explanation.errors["logging"] = message
        logger.warning(
            "mlflow_explain: the explanation could not be logged to MLflow and is lost (set "
            "logging.spool_dir to keep it for `mlflow-explain sync`); training is unaffected: %s",
            message,
        )
        return
    if not (folder / "summary.json").exists():
        write_artifacts(explanation, folder, cfg)
    active_run_id, experiment_id, tracking_uri = tracking.pending_target()
    entry = spool.save(
        cfg.logging.spool_dir,
        folder,
        run_id=run_id or active_run_id,
        experiment_id=experiment_id,
        tracking_uri=tracking_uri,
        artifact_dir=cfg.logging.artifact_dir,
        metrics=tracking.explanation_metrics(explanation),
        tags=tracking.explanation_tags(explanation),
    )
    explanation.warnings.append(
        f"MLflow was unreachable ({message}); the explanation was spooled to {entry}: "
        "upload it with `mlflow-explain sync`."
    )
    logger.warning(
        "mlflow_explain: MLflow is unreachable; explanation spooled to %s (upload it with "
        "`mlflow-explain sync --spool-dir %s`): %s",
        entry,
        cfg.logging.spool_dir,
        message,
    )

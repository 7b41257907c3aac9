"""One path from any engine's request to the MLflow run: compute, drift, artifacts and timings, logging.

:func:`explain_with` runs an engine (pure computation) and :func:`publish` takes its explanation
through the same steps for every engine, in this order:

1. drift against the baseline run (``tracking`` reads the baseline, ``engines.comparison`` computes the drift);
2. the artifacts written (``output.artifacts``: tables, figures, report), the total time stamped, and
   ``summary.json`` written last, so it holds the final status and every timing the metrics hold;
3. metrics, tags and files logged by ``tracking``; when MLflow is unreachable, spooled to
   ``logging.spool_dir`` (or the failure recorded), never breaking the caller's training.
"""

from __future__ import annotations

import logging
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from ..config import ExplainConfig
from ..engines.base import Engine, ExplainRequest
from ..engines.comparison import drift, no_baseline_reason
from ..output.artifacts import write_artifacts, write_summary
from ..results import Drift, Explanation
from ..steps import guarded
from . import spool, tracking

logger = logging.getLogger(__name__)

R = TypeVar("R", bound=ExplainRequest)


def explain_with(
    engine: Engine[R],
    request: R,
    run_id: str | None,
    started: float,
    also_log: tuple[str, Callable[[str], Any]] | None = None,
) -> tuple[Explanation, list[str]]:
    """Compute ``request`` with ``engine`` and publish the explanation into a run.

    Parameters
    ----------
    engine : Engine
        The engine that computes the explanation.
    request : ExplainRequest
        What it explains, with the config.
    run_id : str or None
        Run to log into; default the active run, or a new one.
    started : float
        ``time.perf_counter()`` when the caller started, for ``explain/time_total_s``.
    also_log : (str, callable), optional
        A named step given the target run's id after the drift (such as logging an explainer model
        into it); its failure is recorded under its name, like a method's.

    Returns
    -------
    (Explanation, list of str)
        The explanation and the files logged (relative to ``logging.artifact_dir``; empty when
        nothing reached MLflow).
    """
    explanation = engine.compute(request)
    return explanation, publish(explanation, request.config, run_id, started, also_log)


def publish(
    explanation: Explanation,
    config: ExplainConfig,
    run_id: str | None,
    started: float,
    also_log: tuple[str, Callable[[str], Any]] | None = None,
) -> list[str]:
    """Take ``explanation`` (of any engine) through drift, artifacts and timings, and logging, in that order.

    When MLflow cannot take the explanation, it is spooled to ``logging.spool_dir`` (or the failure
    is recorded); the caller's training is never broken (unless ``on_error: raise``). The
    arguments are those of :func:`explain_with`; returns the files logged (empty when MLflow was
    unreachable).
    """
    with tempfile.TemporaryDirectory(prefix="mlflow_explain_") as folder:
        directory = Path(folder)
        try:
            with tracking.target_run(run_id) as target_run_id:
                if config.compare.enabled:
                    explanation.drift = guarded(
                        explanation, "compare", config.on_error, baseline_drift, explanation, target_run_id, config
                    )
                if also_log is not None:
                    guarded(explanation, also_log[0], config.on_error, also_log[1], target_run_id)
                files = _write(explanation, directory, config, started)
                tracking.log_explanation(explanation, directory, target_run_id, config.logging.artifact_dir)
        except Exception as err:
            if config.on_error == "raise" or not tracking.unreachable(err):
                raise
            _not_logged(explanation, directory, run_id, config, started, err)
            return []
    logger.info(
        "mlflow_explain: explanation of %s logged to run %s (status %s).",
        explanation.model_type,
        target_run_id,
        explanation.status,
    )
    return files


def baseline_drift(explanation: Explanation, run_id: str, config: ExplainConfig) -> Drift | None:
    """Drift of ``explanation`` against the baseline run ``config.compare.baseline`` names, if there is one.

    With ``compare.baseline_match: family`` the baseline is a run of the same model family on the same
    features (its tags say so); without one, ``explanation.no_baseline_reason`` says why there is no
    drift. The baseline's importances are read from its metrics, their keys mapped back to the
    explanation's reported features.
    """
    importances = explanation.importances
    if importances.empty:
        return None
    spec = config.compare.baseline
    same = tracking.baseline_match_tags(explanation) if config.compare.baseline_match == "family" else {}
    baseline_run = tracking.find_baseline(run_id, spec, same)
    if baseline_run is None or not tracking.has_tags(baseline_run, same):
        candidate = baseline_run if baseline_run is not None or not same else tracking.find_baseline(run_id, spec)
        explanation.no_baseline_reason = no_baseline_reason(
            spec,
            explanation.model_family,
            len(explanation.feature_names),
            None if candidate is None else tracking.baseline_candidate(candidate),
        )
        logger.info("mlflow_explain: run %s: %s", run_id, explanation.no_baseline_reason)
        return None
    baseline = tracking.logged_importances(baseline_run, explanation.reported_features)
    if baseline is None:
        return None
    return drift(baseline, importances, config.compare.top_k, config.compare.drift_threshold)


def _write(explanation: Explanation, directory: Path, config: ExplainConfig, started: float) -> list[str]:
    """Artifacts, then the total time, then summary.json; the files written, relative to ``directory``."""
    write_artifacts(explanation, directory, config)
    explanation.timings["total"] = time.perf_counter() - started
    return write_summary(explanation, directory)


def _not_logged(
    explanation: Explanation, directory: Path, run_id: str | None, config: ExplainConfig, started: float, err: Exception
) -> None:
    """MLflow could not take the explanation: spool it to ``logging.spool_dir``, or record the failure."""
    message = f"{type(err).__name__}: {err}"
    if not config.logging.spool_dir:
        explanation.errors["logging"] = message
        logger.warning(
            "mlflow_explain: the explanation could not be logged to MLflow and is lost (set "
            "logging.spool_dir to keep it for `mlflow-explain sync`); training is unaffected: %s",
            message,
        )
        return
    if not (directory / "summary.json").exists():
        _write(explanation, directory, config, started)
    active_run_id, experiment_id, tracking_uri = tracking.pending_target()
    entry = spool.save(
        config.logging.spool_dir,
        directory,
        run_id=run_id or active_run_id,
        experiment_id=experiment_id,
        tracking_uri=tracking_uri,
        artifact_dir=config.logging.artifact_dir,
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
        config.logging.spool_dir,
        message,
    )

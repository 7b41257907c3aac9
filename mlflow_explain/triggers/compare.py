"""The public ``compare()``: read several runs' explanations, compare them, and log a comparison run.

The orchestration of a comparison: ``publish.tracking`` finds the runs and reads their importance
tables, ``engines.comparison`` computes the metrics, ``output.artifacts`` writes the figures, tables
and report, and ``publish.tracking`` logs them into a new comparison run.
"""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path

from ..config import ConfigSource, load_config
from ..engines.comparison import compare_runs
from ..errors import InvalidInputError
from ..output.artifacts import write_comparison
from ..publish import tracking
from ..results import Comparison, RunImportances

logger = logging.getLogger(__name__)


def compare(
    experiment_names: list[str] | None = None,
    experiment_ids: list[str] | None = None,
    run_ids: list[str] | None = None,
    filter_string: str | None = None,
    max_runs: int = 50,
    log_to: str | None = None,
    order_by: str | None = None,
    config: ConfigSource = None,
) -> Comparison:
    """Compare the explanations of several runs, across experiments, and log the comparison.

    Parameters
    ----------
    experiment_names, experiment_ids : list of str, optional
        Experiments whose runs are compared (up to ``max_runs`` newest, filtered by ``filter_string``).
    run_ids : list of str, optional
        Exactly these runs instead.
    filter_string : str, optional
        An MLflow search filter, e.g. ``"params.model = 'rf'"``.
    max_runs : int, default=50
    log_to : str, optional
        Experiment (created if needed) that receives the comparison run; default the first run's.
    order_by : str, optional
        Metric ordering the runs in the plots (ascending); default their start time.
    config : path, dict or ExplainConfig, optional
        ``compare.top_k`` and ``logging.artifact_dir`` are read from it.

    Returns
    -------
    Comparison
        Importances by run, pairwise stability, notes on skipped runs, and the comparison run id.

    Raises
    ------
    InvalidInputError
        When no run matches, or none of the matching runs has an explanation.
    """
    cfg = load_config(config)
    runs, notes = tracking.find_runs(experiment_names, experiment_ids, run_ids, filter_string or "", max_runs)
    if not runs:
        raise InvalidInputError("No runs matched: " + (" ".join(notes) or "check the experiments and the filter."))
    explained = _explained_runs(runs, cfg.logging.artifact_dir, order_by, notes)
    comparison = compare_runs(explained, cfg.compare.top_k, notes)
    for note in comparison.notes:
        logger.warning("mlflow_explain.compare: %s", note)
    with tempfile.TemporaryDirectory(prefix="mlflow_explain_compare_") as folder:
        write_comparison(comparison, Path(folder))
        experiment_id = tracking.experiment_id(log_to) if log_to else runs[0].info.experiment_id
        comparison.run_id = tracking.log_comparison(
            Path(folder), experiment_id, f"compare {len(explained)} runs", _summary_metrics(comparison)
        )
    return comparison


def _explained_runs(runs: list, artifact_dir: str, order_by: str | None, notes: list[str]) -> list[RunImportances]:
    """The importance tables of the runs that have one; a note for each run skipped (appended to ``notes``)."""
    explained = []
    for run in runs:
        importances = tracking.read_importances(run, artifact_dir, order_by)
        if importances is None:
            notes.append(f"Run {run.info.run_name or run.info.run_id} has no explanation; skipped.")
        else:
            explained.append(importances)
    if not explained:
        raise InvalidInputError(f"None of the {len(runs)} matching run(s) has an explanation to compare.")
    if len(explained) == 1:
        notes.append("Only one run has an explanation: there is nothing to compare it with.")
    return explained


def _summary_metrics(comparison: Comparison) -> dict[str, float]:
    metrics: dict[str, float] = {"compare/runs": len(comparison.runs)}
    if len(comparison.stability):
        k = comparison.top_k
        for method, rows in comparison.stability.groupby("method"):
            metrics[f"compare/mean_spearman.{method}"] = rows["spearman"].mean()
            metrics[f"compare/min_ndcg_at_k.{method}"] = rows[f"ndcg_at_{k}"].min()
    return metrics

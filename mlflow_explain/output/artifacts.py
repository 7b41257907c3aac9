"""Write an Explanation, or a Comparison, as files: tables, plots, report, summary (no MLflow).

The folder it fills is what lands under ``explain/`` (or ``compare/``) in the run.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from ..config import ExplainConfig
from ..keys import file_parts, key_parts
from ..models import output_names
from ..results import (
    Comparison,
    Explanation,
    ImageAttributionResult,
    ShapResult,
    image_result_types,
    tabular_result_types,
)
from ..shap_table import shap_table, token_table
from ..steps import guarded, timed
from . import plots, report
from .ranking import write_ranking_tables

logger = logging.getLogger(__name__)

SCHEMA_VERSION = 1


def write_artifacts(explanation: Explanation, directory: Path, config: ExplainConfig) -> None:
    """Write the tables, plots, report and error list of ``explanation`` under ``directory``.

    A failing plot or report is recorded in ``explanation.errors`` (or re-raised, per
    ``on_error``) and the other files are still written. The time it takes is
    ``explanation.timings["artifacts"]``; :func:`write_summary` comes after, so summary.json holds
    the final status and every timing.
    """
    directory.mkdir(parents=True, exist_ok=True)
    with timed(explanation, "artifacts"):
        if explanation.reported_features:  # an image run has none: no empty table or key map
            explanation.importances.to_csv(directory / "importances.csv", index=False)
            write_ranking_tables(explanation, directory)
            _write_json(directory / "feature_keys.json", _key_mapping(explanation))
        if explanation.drift is not None:
            explanation.drift.moved.to_csv(_mkdir(directory / "compare") / "drift_moved_features.csv", index=False)
        if explanation.shap is not None or explanation.tokens is not None:
            _write_parquet(directory / "shap_values.parquet", _values_table(explanation))
        if explanation.shap is not None:
            _local_table(explanation.shap).to_csv(_mkdir(directory / "local") / "local_explanations.csv", index=False)
        if explanation.tokens is not None:
            guarded(explanation, "token_texts", config.on_error, _write_token_texts, explanation, directory)
        for result in explanation.image_results:
            _write_image_arrays(result, _mkdir(directory / result.method))
        images = guarded(explanation, "plots", config.on_error, _write_figures, explanation, directory, config)
        if config.logging.report:
            guarded(explanation, "report", config.on_error, _write_report, explanation, directory, images or {})
    if explanation.errors:
        (directory / "error.txt").write_text(_error_text(explanation), encoding="utf-8")


def _error_text(explanation: Explanation) -> str:
    """error.txt: one line per failed step (``step: Type: message``), then each step's traceback."""
    lines = [f"{step}: {message}" for step, message in explanation.errors.items()]
    tracebacks = [f"\n{step}:\n{text.rstrip()}" for step, text in explanation.tracebacks.items()]
    return "\n".join(lines + tracebacks) + "\n"


SUMMARY = "summary.json"


def write_summary(explanation: Explanation, directory: Path) -> list[str]:
    """Write ``summary.json`` (:func:`summary`) under ``directory``, listing every file there and itself.

    Returns that list: the files of the explanation, relative to ``directory``, in path order.
    """
    files = sorted(
        {path.relative_to(directory).as_posix() for path in directory.rglob("*") if path.is_file()} | {SUMMARY}
    )
    _write_json(directory / SUMMARY, summary(explanation, files))
    return files


def write_comparison(comparison: Comparison, directory: Path) -> None:
    """Write the comparison's figures, tables (``importances_by_run.csv``, ``stability.csv``) and report."""
    directory.mkdir(parents=True, exist_ok=True)
    images = {name: plots.render(figure) for name, figure in plots.comparison_figures(comparison).items()}
    for name, svg in images.items():
        (directory / name).write_bytes(svg)
    comparison.importances.to_csv(directory / "importances_by_run.csv", index=False)
    comparison.stability.to_csv(directory / "stability.csv", index=False)
    (directory / "report.html").write_text(report.render_comparison(comparison, images), encoding="utf-8")


def summary(explanation: Explanation, files: list[str] | None = None) -> dict[str, Any]:
    """The versioned summary.json document; ``files`` are the explanation's files (relative to its folder)."""
    return {
        "schema_version": SCHEMA_VERSION,
        "status": explanation.status,
        "model_type": explanation.model_type,
        "model_family": explanation.model_family,
        "model_details": explanation.model_details,
        "task": {
            "kind": explanation.task.kind,
            "classes": list(explanation.task.classes),
            "class_names": list(explanation.task.class_names),
        },
        "n_rows": explanation.n_rows,
        "n_rows_passed": explanation.n_rows if explanation.n_rows_passed is None else explanation.n_rows_passed,
        "feature_names": explanation.feature_names,
        **_method_summaries(explanation, tabular_result_types()),
        "timings_s": explanation.timings,
        "versions": explanation.versions,
        "config": explanation.config,
        "diagnostics": [dataclasses.asdict(finding) for finding in explanation.diagnostics],
        "drift": None
        if explanation.drift is None
        else {
            "baseline_run_id": explanation.drift.baseline_run_id,
            "method": explanation.drift.method,
            "ndcg_at_k": explanation.drift.ndcg,
            "spearman": explanation.drift.spearman,
            "top_k_overlap": explanation.drift.top_k_overlap,
            "top_k": explanation.drift.top_k,
            "threshold": explanation.drift.threshold,
            "alert": explanation.drift.alert,
        },
        "no_baseline_reason": explanation.no_baseline_reason,
        **_method_summaries(explanation, image_result_types()),
        "warnings": explanation.warnings,
        "errors": explanation.errors,
        "files": files or [],
    }


def _method_summaries(explanation: Explanation, methods: dict[str, type]) -> dict[str, dict[str, Any] | None]:
    """Each of ``methods``' summary.json entry by name: the result's summary, or None when it has none."""
    return {name: None if (result := explanation.results.get(name)) is None else result.summary() for name in methods}


def _write_image_arrays(result: ImageAttributionResult, directory: Path) -> None:
    arrays = {
        "positions.npy": result.positions,
        "probabilities.npy": result.probabilities,
        "labels.npy": result.labels,
        "heatmaps_predicted.npy": result.heatmaps_predicted,
        "heatmaps_true.npy": result.heatmaps_true,
        "mean_heatmaps.npy": result.mean_heatmaps,
    }
    for name, array in arrays.items():
        if array is not None:
            np.save(directory / name, array)


def _write_figures(explanation: Explanation, directory: Path, config: ExplainConfig) -> dict[str, bytes]:
    images = {}
    figures = plots.explanation_figures(explanation, dependence_top_k=config.shap.dependence_top_k)
    for relative, figure in figures.items():
        images[relative] = plots.render(figure)
        path = directory / relative
        _mkdir(path.parent)
        path.write_bytes(images[relative])
    return images


def _write_report(explanation: Explanation, directory: Path, images: dict[str, bytes]) -> None:
    html = report.render_report(explanation, images)
    (directory / "report.html").write_text(html, encoding="utf-8")


def _values_table(explanation: Explanation) -> pd.DataFrame:
    """``shap_values.parquet``: the SHAP rows, then the token rows (``shap_table``'s layout)."""
    tables = [] if explanation.shap is None else [_shap_table(explanation.shap)]
    tokens = explanation.tokens
    if tokens is not None:
        tables.append(
            token_table(
                tokens.row_positions,
                tokens.tokens,
                tokens.values,
                tokens.base_values,
                tokens.output_names,
                tokens.column,
                index_labels=tokens.index_labels,
            )
        )
    return tables[0] if len(tables) == 1 else pd.concat(tables, ignore_index=True)


def _write_token_texts(explanation: Explanation, directory: Path) -> None:
    version = explanation.versions.get("mlflow_explain", "unknown")
    html = report.render_token_texts(explanation.tokens, version)
    (_mkdir(directory / "tokens") / "texts.html").write_text(html, encoding="utf-8")


def _shap_table(shap_result: ShapResult) -> pd.DataFrame:
    """One row per explained row: its position in the user's data (and index label), raw, SHAP and base values."""
    data = shap_result.data[shap_result.feature_names]
    rows = shap_result.row_positions if shap_result.source_rows is None else shap_result.source_rows
    return shap_table(
        rows,
        data,
        shap_result.values,
        shap_result.base_values,
        shap_result.output_names,
        index_labels=shap_result.index_labels,
    )


def _local_table(shap_result: ShapResult) -> pd.DataFrame:
    """Long table of the local rows: row, index, output, feature, value, SHAP value (largest first within a row).

    ``row`` is the row's position in the data the user passed; ``index`` its index label there (only
    when that data was a DataFrame).
    """
    if len(shap_result.local_positions) == 0:
        return pd.DataFrame()
    names = np.asarray(shap_result.feature_names, dtype=object)
    columns: dict[str, list] = {name: [] for name in ("row", "index", "output", "feature", "value", "shap_value")}
    columns["base_value"] = []
    for row in (int(position) for position in shap_result.local_positions):
        output = shap_result.explained_output(row)
        values = shap_result.values[row, :, output]
        order = np.argsort(-np.abs(values), kind="stable")
        columns["row"] += [shap_result.user_row(row)] * len(order)
        columns["index"] += [shap_result.user_label(row)] * len(order)
        columns["output"] += [shap_result.output_names[output]] * len(order)
        columns["feature"] += list(names[order])
        columns["value"] += [str(value) for value in shap_result.data.iloc[row].to_numpy()[order]]
        columns["shap_value"] += list(values[order])
        columns["base_value"] += [shap_result.base_values[row, output]] * len(order)
    if shap_result.index_labels is None:
        del columns["index"]
    return pd.DataFrame(columns)


def _key_mapping(explanation: Explanation) -> dict[str, dict[str, str]]:
    mapping = {
        "features": key_parts(explanation.reported_features),
        "feature_files": file_parts(explanation.reported_features),  # names in artifact file names: no spaces
    }
    if explanation.permutation is not None:
        mapping["scorers"] = key_parts(explanation.permutation.scorer_names)
    if explanation.task.is_classification:
        mapping["classes"] = key_parts(output_names(explanation.task))
    return mapping


def _write_parquet(path: Path, table: pd.DataFrame) -> None:
    """``table`` as Parquet, through pyarrow directly (pandas' ``to_parquet`` costs several times more)."""
    pq.write_table(pa.Table.from_pandas(table, preserve_index=False), path)


def _write_json(path: Path, document: Any) -> None:
    path.write_text(json.dumps(document, indent=2, default=_jsonable, allow_nan=True), encoding="utf-8")


def _jsonable(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return str(value)


def _mkdir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path

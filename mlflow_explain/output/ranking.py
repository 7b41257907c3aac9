"""Each tabular method's ranking as a table in MLflow's logged-table layout, for the MLflow UI to show.

MLflow's UI shows a JSON table that a run lists in its ``mlflow.loggedArtifacts`` tag (what
``mlflow.log_table`` writes and registers) in two places, with no download:

- the run's artifact viewer, as a table: the run's ranking;
- the experiment page's "Artifact evaluation" view, which groups the rows of up to ten runs' tables by
  one column and shows another column with one column per run. By default it groups by the first
  column and compares the second, so ``rank, feature, ...`` shows each run's feature at each rank side
  by side; grouping by ``feature`` and comparing ``rank`` shows where each feature ranks in each run.

The tables are written here; ``publish/tracking`` registers them in the tag.
"""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd

from ..results import Explanation, TokenResult, primary_ranking

RANKING_DIR = "ranking"  # the folder under the artifact folder holding one table per method
SIGNIFICANT_DIGITS = 4


def ranking_tables(explanation: Explanation) -> dict[str, pd.DataFrame]:
    """Each tabular method's ranking of its primary output, by method name, most important first.

    Columns: ``rank`` (1 is the largest importance), ``feature`` (``token`` for token attributions),
    ``importance`` and, for a method with a spread over repeats, ``std``; values to
    ``SIGNIFICANT_DIGITS`` significant digits. The primary output is the one whose metrics carry no
    output part: the first permutation scorer, mean |SHAP| over all classes.
    """
    table = explanation.importances
    tables = {}
    for result in explanation.tabular_results:
        rows = primary_ranking(table, result)
        if rows.empty:
            continue
        unit = "token" if isinstance(result, TokenResult) else "feature"
        ranking = pd.DataFrame(
            {
                "rank": rows["rank"].astype(int).tolist(),
                unit: rows["feature"].astype(str).tolist(),
                "importance": [_significant(value) for value in rows["importance"]],
            }
        )
        if result.metric_std:
            ranking["std"] = [_significant(value) for value in rows["std"]]
        tables[result.method] = ranking
    return tables


def write_ranking_tables(explanation: Explanation, directory: Path) -> None:
    """Write :func:`ranking_tables` as ``<directory>/ranking/<method>.json``.

    The layout is ``mlflow.log_table``'s (pandas' ``orient="split"`` without the index), which the UI reads; a
    value that is not finite is written as null (the UI shows "(empty)").
    """
    for method, table in ranking_tables(explanation).items():
        path = directory / RANKING_DIR / f"{method}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        table.to_json(path, orient="split", index=False, force_ascii=False)


def table_paths(directory: Path) -> list[str]:
    """The ranking tables written under ``directory``, relative to it, in path order."""
    return sorted(path.relative_to(directory).as_posix() for path in (directory / RANKING_DIR).glob("*.json"))


def _significant(value: float) -> float:
    """``value`` to ``SIGNIFICANT_DIGITS`` significant digits (0 stays 0, never -0; NaN and infinities unchanged)."""
    value = float(value)
    if value == 0 or not math.isfinite(value):
        return 0.0 if value == 0 else value
    return float(f"{value:.{SIGNIFICANT_DIGITS}g}")

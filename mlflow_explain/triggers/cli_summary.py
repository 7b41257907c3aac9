"""What ``mlflow-explain explain`` prints when it is done: the status, the top features, where the report is."""

from __future__ import annotations

import math

from ..results import Explanation, primary_ranking

TOP_FEATURES = 5


def summary_lines(explanation: Explanation, run_id: str, artifact_dir: str, top: int = TOP_FEATURES) -> list[str]:
    """A few lines saying how the explanation went and what it found, for stdout.

    Parameters
    ----------
    explanation : Explanation
        The explanation just logged.
    run_id : str
        The run it was logged into.
    artifact_dir : str
        Its artifact folder in the run (``logging.artifact_dir``), where ``error.txt`` is.
    top : int, default=5
        Features listed at most, most important first, by the first tabular method that has a result;
        only those above 0 (a feature whose shuffling costs nothing is not a top feature).

    Returns
    -------
    list of str
        The status line (with the failed steps, if any), then the top features with their importance
        and unit (a tabular explanation) or the methods computed (images).
    """
    status = f"status {explanation.status}"
    if explanation.errors:
        status += f" ({', '.join(explanation.errors)} failed: see {artifact_dir}/error.txt in the run)"
    lines = [f"Explained {explanation.model_type} into run {run_id}: {status}."]
    if not explanation.tabular_results:
        if explanation.results:
            lines.append(f"Computed: {', '.join(result.title for result in explanation.results.values())}.")
        return lines
    result = explanation.tabular_results[0]
    rows = primary_ranking(explanation.importances, result)
    above_zero = rows[rows["importance"] > 0].nsmallest(top, "rank")
    if above_zero.empty:
        lines.append(f"{result.title}: no feature of {len(rows)} is above 0 ({result.unit}).")
        return lines
    lines.append(f"Top features of {len(rows)}, {result.title} ({result.unit}):")
    width = max(len(str(feature)) for feature in above_zero["feature"])
    for position, (feature, importance, std) in enumerate(
        zip(above_zero["feature"], above_zero["importance"], above_zero["std"], strict=True), start=1
    ):
        spread = "" if math.isnan(std) else f" ± {std + 0.0:.2g}"  # NaN: a method without spread
        lines.append(f"  {position}. {str(feature):<{width}}  {importance:.4g}{spread}")
    return lines

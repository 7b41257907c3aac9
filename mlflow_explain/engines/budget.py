"""Time budgets per method (``permutation.budget_s``, ``shap.budget_s``), without MLflow.

The cost of a method is estimated from one timed small piece of its work (a predict call on a
few rows for permutation importance; SHAP values of a few rows), extrapolated to the full job.
When the estimate is over the budget, the method gets fewer rows (then, for permutation
importance, fewer repeats) and the decision is returned as a sentence for the log,
``explanation.warnings`` and summary.json.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from ..data import take_rows

PROBE_ROWS_PERMUTATION = 256
PROBE_ROWS_SHAP = 16
MIN_ROWS = 100  # fewer rows than this make the estimates too noisy; repeats are cut instead


@dataclasses.dataclass(frozen=True)
class Limits:
    """Rows and repeats a method may use, the estimated seconds they take, and why they were cut (or None)."""

    rows: int
    repeats: int
    estimated_s: float
    message: str | None = None


def permutation_limits(
    seconds_per_row: float, n_rows: int, rows: int, n_units: int, n_repeats: int, budget_s: float
) -> Limits:
    """Rows per repeat and repeats of permutation importance that fit ``budget_s``.

    The cost is one baseline prediction of all ``n_rows`` plus ``rows`` predictions per
    (feature, repeat); rows are cut first, down to ``MIN_ROWS``, then repeats, down to one.

    Parameters
    ----------
    seconds_per_row : float
        Measured prediction time per row.
    n_rows, rows : int
        Validation rows (the baseline score), and rows drawn per repeat as configured.
    n_units, n_repeats : int
        Features (or feature groups) permuted, and repeats as configured.
    budget_s : float
        Seconds allowed.

    Returns
    -------
    Limits
    """

    def cost(rows_used: int, repeats: int) -> float:
        return seconds_per_row * (n_rows + rows_used * n_units * repeats)

    wanted = cost(rows, n_repeats)
    if wanted <= budget_s:
        return Limits(rows, n_repeats, wanted)
    per_copy = max(budget_s / seconds_per_row - n_rows, 0.0) / max(n_units, 1)
    floor_rows = min(MIN_ROWS, rows)
    new_rows = min(rows, int(per_copy / n_repeats))
    new_repeats = n_repeats
    if new_rows < floor_rows:
        new_rows = floor_rows
        new_repeats = max(1, min(n_repeats, int(per_copy / floor_rows)))
    estimated = cost(new_rows, new_repeats)
    message = (
        f"permutation: the estimated {wanted:.0f} s for {rows} rows x {n_repeats} repeats x {n_units} features "
        f"is over budget_s={budget_s:g}; using {new_rows} rows x {new_repeats} repeats "
        f"(estimated {estimated:.0f} s)."
    )
    if estimated > budget_s:
        message += " That is still over the budget: the fewest rows and repeats that give an estimate at all."
    return Limits(new_rows, new_repeats, estimated, message)


def shap_limits(seconds_per_row: float, rows: int, budget_s: float) -> Limits:
    """Rows of SHAP values that fit ``budget_s`` (at least ``MIN_ROWS``, or all of them when fewer)."""
    wanted = seconds_per_row * rows
    if wanted <= budget_s:
        return Limits(rows, 1, wanted)
    new_rows = min(rows, max(int(budget_s / seconds_per_row), MIN_ROWS))
    estimated = seconds_per_row * new_rows
    message = (
        f"shap: the estimated {wanted:.0f} s for {rows} rows is over budget_s={budget_s:g}; "
        f"explaining {new_rows} rows (estimated {estimated:.0f} s)."
    )
    return Limits(new_rows, 1, estimated, message)


def seconds_per_row(work: Callable[[Any], Any], X: Any, probe_rows: int) -> float:
    """Wall seconds per row of ``work`` on the first ``probe_rows`` rows of ``X`` (fixed costs included)."""
    n = min(probe_rows, X.shape[0])
    rows = take_rows(X, np.arange(n))
    started = time.perf_counter()
    work(rows)
    return max(time.perf_counter() - started, 1e-9) / n


def rows_of(max_samples: float | int, n_rows: int) -> int:
    """Rows per repeat that ``max_samples`` (a fraction or a count, as in scikit-learn) means."""
    if isinstance(max_samples, float):
        return max(1, math.floor(max_samples * n_rows))
    return min(int(max_samples), n_rows)

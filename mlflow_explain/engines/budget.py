"""Time budgets, without MLflow: per method (``permutation.budget_s``, ``shap.budget_s``) and of a
whole explanation (``budget.explain_s``; autolog's ``budget.autolog_s``), split between the methods.

The cost of a method is estimated from one timed small piece of its work (a predict call on a
few rows for permutation importance; building the SHAP explainer, then the SHAP values of a few
rows), extrapolated to the full job. When the estimate is over the budget, the method gets fewer
rows (then, for permutation importance, fewer repeats) and the decision is returned as a sentence
for the log, ``explanation.warnings``, summary.json and the report.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from ..data import take_rows

PROBE_ROWS_PERMUTATION = 2048  # fewer rows time mostly the predict call's fixed cost, not the cost per row
PROBE_ROWS_SHAP = 16
PROBE_TEXTS_TOKENS = 8  # texts whose token attributions are timed: every text costs a predict call or more
OTHER_WORK = 0.1  # of an explanation's budget (budget.explain_s) left to the diagnostics, figures and logging
MIN_ROWS = 100  # fewer rows than this make the estimates too noisy; repeats are cut instead
PLANNED_MIN_ROWS = 10  # under an explanation's budget the budget comes first: down to this many rows
PROBE_S = 0.5  # the SHAP probe stops adding rows once it has taken this long (a deep forest: a second per row)


@dataclasses.dataclass(frozen=True)
class Limits:
    """Rows and repeats a method may use, the estimated seconds they take, why they were cut (or None),
    and the seconds allowed."""

    rows: int
    repeats: int
    estimated_s: float
    message: str | None = None
    budget_s: float = math.inf


def permutation_limits(
    seconds_per_row: float,
    n_rows: int,
    rows: int,
    n_units: int,
    n_repeats: int,
    budget_s: float,
    budget_name: str | None = None,
    min_rows: int = MIN_ROWS,
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
    budget_name : str, default=None
        The budget as the message names it; default ``budget_s=<budget_s>``.
    min_rows : int, default=MIN_ROWS
        Fewest rows per repeat before repeats are cut.

    Returns
    -------
    Limits
    """

    def cost(rows_used: int, repeats: int) -> float:
        return seconds_per_row * (n_rows + rows_used * n_units * repeats)

    wanted = cost(rows, n_repeats)
    if wanted <= budget_s:
        return Limits(rows, n_repeats, wanted, budget_s=budget_s)
    per_copy = max(budget_s / seconds_per_row - n_rows, 0.0) / max(n_units, 1)
    floor_rows = min(min_rows, rows)
    new_rows = min(rows, int(per_copy / n_repeats))
    new_repeats = n_repeats
    if new_rows < floor_rows:
        new_rows = floor_rows
        new_repeats = max(1, min(n_repeats, int(per_copy / floor_rows)))
    estimated = cost(new_rows, new_repeats)
    message = (
        f"permutation: the estimated {wanted:.0f} s for {rows} rows x {n_repeats} repeats x {n_units} features "
        f"is over {budget_name or f'budget_s={budget_s:g}'}; using {new_rows} rows x {new_repeats} repeats "
        f"(estimated {estimated:.0f} s)."
    )
    if estimated > budget_s:
        message += " That is still over the budget: the fewest rows and repeats that give an estimate at all."
    return Limits(new_rows, new_repeats, estimated, message, budget_s)


def shap_limits(
    seconds_per_row: float,
    rows: int,
    budget_s: float,
    fixed_s: float = 0.0,
    budget_name: str | None = None,
    min_rows: int = MIN_ROWS,
    method: str = "shap",
    unit: str = "rows",
) -> Limits:
    """Rows of SHAP values (or of another method that explains rows one by one) that fit ``budget_s`` (at least
    ``min_rows``, or all of them when fewer).

    The cost is ``fixed_s`` (building the explainer) plus ``seconds_per_row`` per row explained;
    ``budget_name`` names the budget in the message (default ``budget_s=<budget_s>``), ``method`` the method and
    ``unit`` what it explains (token attributions: texts).
    """
    wanted = fixed_s + seconds_per_row * rows
    if wanted <= budget_s:
        return Limits(rows, 1, wanted, budget_s=budget_s)
    new_rows = min(rows, max(int((budget_s - fixed_s) / seconds_per_row), min_rows))
    estimated = fixed_s + seconds_per_row * new_rows
    message = (
        f"{method}: the estimated {wanted:.0f} s for {rows} {unit} is over {budget_name or f'budget_s={budget_s:g}'}; "
        f"explaining {new_rows} {unit} (estimated {estimated:.0f} s)."
    )
    return Limits(new_rows, 1, estimated, message, budget_s)


def shares(wanted_s: dict[str, float], total_s: float) -> dict[str, float]:
    """The seconds of ``total_s`` each method gets: what it wants when that fits its equal share, the rest
    split equally among the methods that want more (so a cheap method never starves an expensive one).

    Parameters
    ----------
    wanted_s : dict of str to float
        Estimated seconds each method takes in full.
    total_s : float
        Seconds to split.

    Returns
    -------
    dict of str to float
        The seconds of each method, in the order of ``wanted_s``.
    """
    given: dict[str, float] = {}
    left, waiting = max(total_s, 0.0), sorted(wanted_s, key=wanted_s.get)
    while waiting:
        equal = left / len(waiting)
        name = waiting[0]
        if wanted_s[name] > equal:
            given.update(dict.fromkeys(waiting, equal))
            break
        given[name] = wanted_s[name]
        left -= wanted_s[name]
        waiting.pop(0)
    return {name: given[name] for name in wanted_s}


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

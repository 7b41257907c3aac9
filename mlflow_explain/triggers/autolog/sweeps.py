"""What autolog explains in a nested run (a sweep's trial): light by default, in full, or nothing.

A sweep (Optuna, Hyperopt, a loop of ``mlflow.start_run(nested=True)``) fits many models whose
explanations are compared, not read one by one. ``sweeps.nested`` says what each trial gets:
``light`` (the default: permutation importance only, on at most ``sweeps.nested_max_rows`` seeded
validation rows, the same rows in every trial; no SHAP, token attributions, leakage check or drift against the
previous trial), ``full`` (as any run) or ``none``. The
parent run, or the best model, is explained in full by a fit in the parent run or by
``mlflow_explain.explain(best_model, X, y, run_id=parent_run_id)``.
"""

from __future__ import annotations

import dataclasses

from ...config import ExplainConfig, load_config
from ...publish import tracking

_LIGHT = {
    "shap": {"enabled": False},
    "tokens": {"enabled": False},
    "diagnostics": {"leakage": False},
    "compare": {"enabled": False},
}


@dataclasses.dataclass(frozen=True)
class Plan:
    """How a fit is explained: with ``config`` (None: not at all), and the notes that say why, for summary.json."""

    config: ExplainConfig | None
    notes: tuple[str, ...] = ()


def plan(config: ExplainConfig, run_id: str | None) -> Plan:
    """The plan for a fit of run ``run_id`` (None: a run autolog makes, never nested) under ``config``."""
    mode = config.sweeps.nested
    if mode == "full" or run_id is None or tracking.parent_run_id(run_id) is None:
        return Plan(config)
    if mode == "none":
        return Plan(None)
    rows = min(config.validation.max_rows, config.sweeps.nested_max_rows)
    light = load_config(config, {**_LIGHT, "validation": {"max_rows": rows}})
    note = (
        f"Light explanation of a nested run (sweeps.nested=light): permutation importance only, on at most "
        f"{rows} validation rows; no SHAP, no token attributions, no leakage check, no drift against another run. "
        f"Explain the best model in full with mlflow_explain.explain(model, X, y, run_id=<parent run id>), or set "
        f"sweeps.nested=full."
    )
    return Plan(light, (note,))

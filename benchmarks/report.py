"""The benchmark's figures per case, the targets of issues 7 and 3 checked against them, and the markdown."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from .cases import Case
from .peers import Timing

_IDENTICAL = 1e-12  # "identical importances": equal up to floating-point summation order
_SHAP_EQUAL = 1e-9  # the tolerance the unit tests hold SHAP values to against the shap library


@dataclasses.dataclass
class Row:
    """Every tool's timing on one case."""

    case: Case
    n_repeats: int
    ours_permutation: Timing | None = None
    sklearn_permutation: Timing | None = None
    eli5_permutation: Timing | None = None
    limit: Timing | None = None
    importance_gap: float | None = None
    shap_rows: int = 0
    ours_shap: Timing | None = None
    shap_direct: Timing | None = None
    shap_gap: float | None = None
    mlflow_shap: Timing | None = None
    plugin: Timing | None = None  # the whole evaluate(evaluators=["explain"]) call
    plugin_own: Timing | None = None  # the explain evaluator's own evaluate method inside that call
    explain: Timing | None = None

    def explain_ratio(self) -> float | None:
        """Whole explain() wall time over the two methods' compute time in the same call."""
        if self.explain is None or self.explain.seconds is None:
            return None
        return self.explain.seconds / self.explain.result[1]


@dataclasses.dataclass
class Target:
    """One target: what it asks, what was measured, and whether it is met (None: not measurable)."""

    goal: str
    measured: str
    met: bool | None


def ratio(numerator: Timing | None, denominator: Timing | None) -> float | None:
    """numerator / denominator seconds, or None when either tool did not run."""
    if numerator is None or denominator is None or numerator.seconds is None or denominator.seconds is None:
        return None
    return numerator.seconds / denominator.seconds


def targets(rows: list[Row], memory: dict, memory_spec: dict) -> list[Target]:
    """The targets of issue 7 item 2 and issue 3's plugin figure, each met or not."""
    checks = [
        _worst(
            rows,
            "permutation importance within 1.25x of the limit on every case",
            lambda r: ratio(r.ours_permutation, r.limit),
            1.25,
            "x the limit",
            high_is_bad=True,
        ),
        _worst(
            [r for r in rows if r.case.small_validation],
            "permutation importance at least 5x faster than sklearn on the small-validation-set case",
            lambda r: ratio(r.sklearn_permutation, r.ours_permutation),
            5,
            "x faster",
            high_is_bad=False,
        ),
        _worst(
            rows,
            "permutation importances identical to sklearn's on every case (max abs difference)",
            lambda r: r.importance_gap,
            _IDENTICAL,
            "",
            high_is_bad=True,
            precision=".1e",
        ),
        _worst(
            rows,
            "SHAP at most 1.2x the shap library's best explainer called directly, every case",
            lambda r: ratio(r.ours_shap, r.shap_direct),
            1.2,
            "x shap",
            high_is_bad=True,
        ),
        _worst(
            rows,
            "SHAP values equal to the shap library's (max abs difference)",
            lambda r: r.shap_gap,
            _SHAP_EQUAL,
            "",
            high_is_bad=True,
            precision=".1e",
        ),
        _worst(
            [r for r in rows if r.case.family in ("tree", "pipeline")],
            "SHAP at least 100x faster than mlflow.models.evaluate's SHAP on the tree and pipeline cases",
            lambda r: ratio(r.mlflow_shap, r.ours_shap),
            100,
            "x faster",
            high_is_bad=False,
        ),
        _worst(
            rows,
            "whole explain() at most 1.5x the two methods' compute time, every case",
            Row.explain_ratio,
            1.5,
            "x compute",
            high_is_bad=True,
        ),
        _memory_target(memory, memory_spec),
        _worst(
            [r for r in rows if r.case.family == "tree"],
            "issue 3: the explain plugin's own evaluate (SHAP only, with plots, report, logging) at least 50x "
            "faster than mlflow.models.evaluate's SHAP (its explainer, values, plots, logging) on the tree models",
            lambda r: ratio(r.mlflow_shap, r.plugin_own),
            50,
            "x faster",
            high_is_bad=False,
        ),
    ]
    return checks


def _worst(
    rows: list[Row],
    goal: str,
    measure: Callable[[Row], float | None],
    bound: float,
    unit: str,
    *,
    high_is_bad: bool,
    precision: str = ".2f",
) -> Target:
    """The target checked on its worst case (listing the cases that miss it)."""
    values = [(row.case.name, measure(row)) for row in rows]
    known = [(name, value) for name, value in values if value is not None]
    if not known:
        return Target(goal, "not measured (no tool result)", None)
    misses = [(name, value) for name, value in known if (value > bound if high_is_bad else value < bound)]
    name, worst = max(known, key=lambda item: item[1]) if high_is_bad else min(known, key=lambda item: item[1])
    measured = f"worst {worst:{precision}}{unit} ({name})"
    if misses:
        measured += "; missed on: " + ", ".join(f"{n} ({v:{precision}}{unit})" for n, v in misses)
    unmeasured = [name for name, value in values if value is None]
    if unmeasured:
        measured += "; not measured on: " + ", ".join(unmeasured)
    return Target(goal, measured, not misses)


def _memory_target(memory: dict, spec: dict) -> Target:
    goal = (
        f"peak memory of permutation importance on {spec['rows']:,} x {spec['features']} with {spec['repeats']} "
        "repeats under 2 GiB"
    )
    if "peak_mib" not in memory:
        return Target(goal, f"not measured: {memory.get('failure')}", None)
    return Target(goal, f"{memory['peak_mib']:.0f} MiB peak resident (process total)", memory["peak_mib"] < 2048)


def markdown(
    rows: list[Row],
    checks: list[Target],
    memory: dict,
    memory_spec: dict,
    *,
    machine: str,
    command: str,
    repeats: tuple[int, int],
    seconds: float,
) -> str:
    """RESULTS.md: machine, permutation, SHAP, whole explain(), memory and targets tables."""
    light, heavy = repeats
    lines = [
        "# mlflow_explain benchmark results",
        "",
        f"Command: `{command}` ({seconds / 60:.1f} minutes in all).",
        "",
        f"Machine: {machine}.",
        "",
        f"Each figure is the median of {light} runs ({heavy} for the calls that go through "
        "`mlflow.models.evaluate` or log to MLflow); ratios are of those medians. Every tool gets the same "
        "fitted model and the same validation rows.",
        "",
        "## Permutation importance",
        "",
        "The limit is one `predict` call over every row the permutations need: one copy of the validation rows "
        'per feature and repeat, plus the baseline. "max abs diff" compares every importance (feature x repeat) '
        "with scikit-learn's, same seed.",
        "",
        "| case | rows x features, repeats | limit: one predict (s) | mlflow_explain (s) | ÷ limit "
        "| sklearn (s) | sklearn ÷ ours | max abs diff vs sklearn | ELI5 (s) | ELI5 ÷ ours |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        shape = f"{row.case.X.shape[0]} x {row.case.X.shape[1]}, {row.n_repeats}"
        lines.append(
            _cells(
                [
                    row.case.name,
                    shape,
                    _seconds(row.limit),
                    _seconds(row.ours_permutation),
                    _ratio(ratio(row.ours_permutation, row.limit)),
                    _seconds(row.sklearn_permutation),
                    _ratio(ratio(row.sklearn_permutation, row.ours_permutation)),
                    _number(row.importance_gap),
                    _seconds(row.eli5_permutation),
                    _ratio(ratio(row.eli5_permutation, row.ours_permutation)),
                ]
            )
        )
    lines += [
        "",
        "## SHAP",
        "",
        'MLflow\'s figure is `mlflow.models.evaluate(evaluators="default")` with `log_model_explainability` on minus '
        "the same call with it off (its explainer, values and three plots), on exactly the rows mlflow_explain "
        "explains (`explainability_nsamples` = rows). The plugin runs with permutation importance off (SHAP values, "
        "plots, report and logging): \"plugin's own\" is the explain evaluator's `evaluate` method inside the "
        '`evaluate(evaluators=["explain"])` call, what compares like with like with MLflow\'s figure; "whole '
        "call\" is that whole `mlflow.models.evaluate` call, MLflow's own loading of the model and data included.",
        "",
        "| case | rows | shap direct (s) | mlflow_explain (s) | ours ÷ shap | max abs diff | "
        "MLflow evaluate SHAP (s) | MLflow ÷ ours | plugin's own (s) | MLflow ÷ plugin's own "
        "| plugin, whole evaluate call (s) | MLflow ÷ whole call |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        lines.append(
            _cells(
                [
                    row.case.name,
                    str(row.shap_rows),
                    _seconds(row.shap_direct),
                    _seconds(row.ours_shap),
                    _ratio(ratio(row.ours_shap, row.shap_direct)),
                    _number(row.shap_gap),
                    _seconds(row.mlflow_shap),
                    _ratio(ratio(row.mlflow_shap, row.ours_shap)),
                    _seconds(row.plugin_own),
                    _ratio(ratio(row.mlflow_shap, row.plugin_own)),
                    _seconds(row.plugin),
                    _ratio(ratio(row.mlflow_shap, row.plugin)),
                ]
            )
        )
    lines += [
        "",
        "## The whole explain()",
        "",
        "`mlflow_explain.explain()` with the default config (same SHAP rows and permutation repeats as above): both "
        "methods, diagnostics, comparison with the previous run, every plot, the HTML report and logging to a "
        "SQLite store (inside an active run, whose creation is not counted), against the two methods' compute time "
        "measured inside the same call.",
        "",
        "| case | two methods' compute (s) | whole explain() (s) | ratio |",
        "|---|---:|---:|---:|",
    ]
    for row in rows:
        compute = None if row.explain is None or row.explain.result is None else row.explain.result[1]
        lines.append(
            _cells([row.case.name, _number(compute, ".3g"), _seconds(row.explain), _ratio(row.explain_ratio())])
        )
    lines += [
        "",
        "## Peak memory",
        "",
        _memory_line(memory, memory_spec),
        "",
        "## Targets",
        "",
        "| target | measured | verdict |",
        "|---|---|---|",
    ]
    for check in checks:
        verdict = "not measured" if check.met is None else ("**met**" if check.met else "**not met**")
        lines.append(_cells([check.goal, check.measured, verdict]))
    return "\n".join(lines) + "\n"


def _memory_line(memory: dict, spec: dict) -> str:
    if "peak_mib" not in memory:
        return f"Not measured: {memory.get('failure')}"
    return (
        f"Permutation importance of a ridge regression on {spec['rows']:,} x {spec['features']} generated rows "
        f"({memory['data_mib']:.0f} MiB of data), {spec['repeats']} repeats, default `memory_budget_mb`, in a "
        f"fresh process: peak resident memory {memory['peak_mib']:.0f} MiB (the process before the call: "
        f"{memory['peak_before_mib']:.0f} MiB), {memory['seconds']:.1f} s, {memory['predict_calls']} predict calls."
    )


def _cells(cells: list[str]) -> str:
    return "| " + " | ".join(cell.replace("|", "/") for cell in cells) + " |"


def _seconds(timing: Timing | None) -> str:
    if timing is None:
        return "not run"
    if timing.seconds is None:
        return f"n/a: {timing.failure}"
    return f"{timing.seconds:.3g}"


def _ratio(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3g}x"


def _number(value: float | None, precision: str = ".1e") -> str:
    return "n/a" if value is None else f"{value:{precision}}"

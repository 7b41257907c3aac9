"""What ``mlflow_explain.explain()`` costs beyond its two methods' compute, with the figures stubbed out.

Figures are drawn by plots.py, which is measured on its own; here ``plots.explanation_figures``
returns no figure, so what is left is the overhead this script reports, step by step:

- whole: wall seconds of ``explain()`` inside ``mlflow.start_run()`` on a SQLite store (the run's
  creation and end not included);
- compute: the two methods (permutation importance and SHAP) as ``explanation.timings`` records them;
- diagnostics, compare (finding the previous run and reading its importances), artifacts (every file but
  the figures: tables, parquet, force plot, report, summary.json) and logging (the MLflow calls),
  each timed by wrapping the library's function from here (nothing is timed inside the library);
- other: whole minus all of the above (config, data checks, package versions, run resolution,
  temporary folder).

Each case is explained ``--repeats`` times into new runs of one experiment (so every call after the
first compares with a previous run); the first call is reported apart, as it pays one-off imports.

    python benchmarks/explain_overhead.py [--repeats 5] [--case diabetes]
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import statistics
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import mlflow  # noqa: E402

import mlflow_explain  # noqa: E402
from benchmarks.cases import Case, breast_cancer_logistic, diabetes_forest  # noqa: E402
from mlflow_explain.engines import base  # noqa: E402
from mlflow_explain.output import plots  # noqa: E402
from mlflow_explain.publish import flow, tracking  # noqa: E402

STEPS = ("diagnostics", "compare", "artifacts", "logging")


@contextlib.contextmanager
def _timing(owner: Any, name: str, seconds: dict[str, float], step: str) -> Iterator[None]:
    """Replace ``owner.name`` by a wrapper adding its wall seconds to ``seconds[step]``; restore it afterwards."""
    original = getattr(owner, name)

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return original(*args, **kwargs)
        finally:
            seconds[step] = seconds.get(step, 0.0) + time.perf_counter() - started

    setattr(owner, name, wrapper)
    try:
        yield
    finally:
        setattr(owner, name, original)


def measure(case: Case, config: dict) -> dict[str, float]:
    """One ``explain()`` of ``case`` in a new run, figures stubbed: seconds of the whole call and of each step."""
    seconds: dict[str, float] = {}
    wrapped: list[tuple[Any, str, str]] = [
        (base, "diagnose", "diagnostics"),
        (flow, "baseline_drift", "compare"),
        (flow, "write_artifacts", "artifacts"),
        (flow, "write_summary", "artifacts"),
        (tracking, "log_explanation", "logging"),
    ]
    with contextlib.ExitStack() as stack:
        stack.enter_context(_stubbed_figures())
        for owner, name, step in wrapped:
            stack.enter_context(_timing(owner, name, seconds, step))
        with mlflow.start_run(run_name="explain overhead"):  # the run's own creation is not explain()'s
            started = time.perf_counter()
            explanation = mlflow_explain.explain(case.model, case.X, case.y, config=config)
            seconds["whole"] = time.perf_counter() - started
    if explanation.status != "ok":
        raise RuntimeError(f"explain() of {case.name} ended {explanation.status}: {explanation.errors}")
    seconds["compute"] = explanation.timings["permutation"] + explanation.timings["shap"]
    seconds["other"] = seconds["whole"] - seconds["compute"] - sum(seconds.get(step, 0.0) for step in STEPS)
    return seconds


@contextlib.contextmanager
def _stubbed_figures() -> Iterator[None]:
    original: Callable = plots.explanation_figures
    plots.explanation_figures = lambda *args, **kwargs: {}
    try:
        yield
    finally:
        plots.explanation_figures = original


def table(results: dict[str, list[dict[str, float]]]) -> str:
    """Markdown: per case, the first call and the median of the others, step by step."""
    columns = ("whole", "compute", *STEPS, "other")
    lines = [
        "| case | call | " + " | ".join(f"{c} (s)" for c in columns) + " | whole ÷ compute |",
        "|---|---|" + "---:|" * (len(columns) + 1),
    ]
    for name, runs in results.items():
        groups = [("first", runs[:1])] + ([(f"median of {len(runs) - 1} more", runs[1:])] if len(runs) > 1 else [])
        for label, group in groups:
            medians = {c: statistics.median(run.get(c, 0.0) for run in group) for c in columns}
            cells = [f"{medians[c]:.4f}" for c in columns]
            lines.append(
                f"| {name} | {label} | " + " | ".join(cells) + f" | {medians['whole'] / medians['compute']:.2f}x |"
            )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=5, help="explain() calls per case (default 5)")
    parser.add_argument("--case", help="only the cases whose name contains this text")
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    logging.basicConfig(level=logging.ERROR)
    folder = tempfile.mkdtemp(prefix="mlflow_explain_overhead_")
    mlflow.set_tracking_uri(f"sqlite:///{Path(folder) / 'mlflow.db'}")
    results: dict[str, list[dict[str, float]]] = {}
    for case in (diabetes_forest(), breast_cancer_logistic()):
        if args.case and args.case.lower() not in case.name.lower():
            continue
        mlflow.set_experiment(f"overhead {case.name}")
        config = {"shap": {"max_rows": 500}, "permutation": {"n_repeats": 5}}
        results[case.name] = [measure(case, config) for _ in range(args.repeats)]
    print(table(results))


if __name__ == "__main__":
    main()

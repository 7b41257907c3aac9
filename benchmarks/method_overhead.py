"""The fixed per-call overhead of the two methods, without MLflow: ours against shap direct and the limit.

For every case of ``benchmarks/cases.py``, with the row caps of ``run.py --quick`` (at most 2000
validation rows; 500 SHAP rows, or 50 where MLflow's evaluator would fall back to shap's
model-agnostic explainer), it times

- mlflow_explain's permutation importance against the limit: one predict call over every row
  the permutations need (``peers.limit_predict``);
- mlflow_explain's SHAP values against the shap library's best explainer called directly on the
  same rows (``peers.shap_direct``), and checks that the values agree (``peers.shap_gap``).

Ours and the peer run alternately, after one untimed warm-up call each, so that the load of a
shared machine falls on both alike; each figure is the median of the runs. A tool gets as many
runs as fit in ``--seconds`` (at least 3, at most ``--repeats``). Prints a markdown table.

    python benchmarks/method_overhead.py [--case TEXT] [--repeats N] [--seconds S] [--threads N] [--cpu]
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import statistics
import sys
import time
import warnings
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from threadpoolctl import threadpool_limits  # noqa: E402

from benchmarks import peers  # noqa: E402
from benchmarks.cases import Case, build_cases  # noqa: E402
from benchmarks.run import _QUICK_VALIDATION_ROWS, _importable  # noqa: E402

_QUICK_SHAP_ROWS = 500  # run.py --quick's SHAP rows ...
_QUICK_MODEL_AGNOSTIC_ROWS = 50  # ... and where MLflow falls back to shap's model-agnostic explainer
_MIN_RUNS = 3


@dataclasses.dataclass
class Pair:
    """Median seconds of ours and of the reference over the same number of alternating runs."""

    ours: float
    reference: float
    runs: int

    @property
    def ratio(self) -> float:
        return self.ours / self.reference


def alternate(
    ours: Callable[[], Any], reference: Callable[[], Any], max_runs: int, seconds: float, cpu: bool = False
) -> tuple[Pair, Any]:
    """Time ``ours`` and ``reference`` alternately; the pair of medians and ours's last result.

    With ``cpu``, a run's figure is the CPU time of this process rather than the wall time (for
    single-threaded runs on a shared machine, where other processes' load inflates wall times).
    """
    first, result = _run(ours, cpu), None  # warm-up, untimed in the figures; sizes the number of runs
    warm = _run(reference, cpu)
    runs = max(_MIN_RUNS, min(max_runs, int(seconds / max(first[0], warm[0], 1e-6))))
    ours_times, reference_times = [], []
    for _ in range(runs):
        spent, result = _run(ours, cpu)
        ours_times.append(spent)
        reference_times.append(_run(reference, cpu)[0])
    return Pair(statistics.median(ours_times), statistics.median(reference_times), runs), result


def _run(function: Callable[[], Any], cpu: bool) -> tuple[float, Any]:
    """One run of ``function`` through ``peers.timed``: (seconds, wall or CPU, and its result)."""
    started = time.process_time()
    timing = peers.timed(function, 1)
    if timing.seconds is None:
        raise RuntimeError(timing.failure)
    return (time.process_time() - started if cpu else timing.seconds), timing.result


def quick_caps(case: Case) -> tuple[Case, int]:
    """The case with ``run.py --quick``'s validation-row cap, and its number of SHAP rows."""
    shap_rows = min(_QUICK_MODEL_AGNOSTIC_ROWS if case.mlflow_model_agnostic else _QUICK_SHAP_ROWS, len(case.X))
    if len(case.X) > _QUICK_VALIDATION_ROWS:
        case = dataclasses.replace(case, X=case.X.iloc[:_QUICK_VALIDATION_ROWS], y=case.y[:_QUICK_VALIDATION_ROWS])
    return case, min(shap_rows, len(case.X))


def measure(case: Case, n_repeats: int, max_runs: int, seconds: float, cpu: bool = False) -> dict[str, Any]:
    """Both methods on one case against their references; one table row."""
    case, shap_rows = quick_caps(case)
    stacked = peers.limit_rows(case, n_repeats)
    permutation, _ = alternate(
        partial(peers.ours_permutation, case, n_repeats),
        partial(peers.limit_predict, case, stacked),
        max_runs,
        seconds,
        cpu,
    )
    del stacked
    ours = peers.ours_shap(case, shap_rows)  # the rows (and background) the direct call gets
    shap, last = alternate(
        partial(peers.ours_shap, case, shap_rows), partial(peers.shap_direct, case, ours), max_runs, seconds, cpu
    )
    gap = peers.shap_gap(case, last, peers.shap_direct(case, last))
    return {
        "case": case,
        "permutation": permutation,
        "shap": shap,
        "shap_rows": shap_rows,
        "gap": gap,
        "algorithm": last.algorithm,
    }


def markdown(rows: list[dict[str, Any]], n_repeats: int) -> str:
    """The table: per case, permutation importance against the limit and SHAP against shap direct."""
    lines = [
        "| case | rows x features | limit (s) | ours permutation (s) | ÷ limit | SHAP rows | shap direct (s) "
        "| ours SHAP (s) | ÷ shap | max abs diff | runs |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for row in rows:
        case, permutation, shap = row["case"], row["permutation"], row["shap"]
        lines.append(
            f"| {case.name} | {case.X.shape[0]} x {case.X.shape[1]}, {n_repeats} repeats "
            f"| {permutation.reference:.3g} | {permutation.ours:.3g} | {permutation.ratio:.2f}x "
            f"| {row['shap_rows']} ({row['algorithm']}) | {shap.reference:.3g} | {shap.ours:.3g} | {shap.ratio:.2f}x "
            f"| {row['gap']:.1e} | {permutation.runs}, {shap.runs} |"
        )
    worst_permutation = max(row["permutation"].ratio for row in rows)
    worst_shap = max(row["shap"].ratio for row in rows)
    lines += [
        "",
        f"Worst: permutation importance {worst_permutation:.2f}x the limit (target 1.25x), "
        f"SHAP {worst_shap:.2f}x shap direct (target 1.2x).",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--case", help="only the cases whose name contains this text")
    parser.add_argument("--repeats", type=int, default=40, help="most runs per figure (default 40)")
    parser.add_argument("--seconds", type=float, default=4.0, help="time per tool and case that sizes the runs")
    parser.add_argument("--permutation-repeats", type=int, default=5, help="shuffles per feature (default 5)")
    parser.add_argument("--threads", type=int, help="limit OpenMP/BLAS threads of every tool (default: libraries' own)")
    parser.add_argument(
        "--cpu",
        action="store_true",
        help="time by this process's CPU time, every tool on one thread (for a loaded machine)",
    )
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    rows = []
    threads = 1 if args.cpu else args.threads
    with threadpool_limits(threads) if threads else contextlib.nullcontext():
        for case in build_cases(lightgbm=_importable("lightgbm")):
            if args.case and args.case.lower() not in case.name.lower():
                continue
            print(f"... {case.name}", file=sys.stderr, flush=True)
            rows.append(measure(case, args.permutation_repeats, args.repeats, args.seconds, args.cpu))
    print(f"Seconds of {'CPU time, one thread' if args.cpu else 'wall time'}; median of the runs.\n")
    print(markdown(rows, args.permutation_repeats))


if __name__ == "__main__":
    main()

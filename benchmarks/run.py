"""mlflow_explain against every peer, case by case, in one process run; results in benchmarks/RESULTS.md.

For each case (benchmarks/cases.py) every tool gets the same fitted model and the same rows:

- permutation importance: mlflow_explain, ``sklearn.inspection.permutation_importance`` (same seed,
  so the importances must be identical), ELI5's ``PermutationImportance``, and the limit: one
  predict call over all the rows the permutations need (one copy of the validation rows per
  feature and repeat, plus the baseline), timed in the same run;
- SHAP: mlflow_explain, the shap library's best explainer called directly on the same rows, and
  ``mlflow.models.evaluate``'s default SHAP explainability on the same rows (evaluate with
  ``log_model_explainability`` on minus the same call with it off), and the explain evaluator
  plugin inside ``mlflow.models.evaluate`` (SHAP only: values, plots, report, logging): the whole
  call, and the plugin's own part of it (its ``evaluate`` method), which is what compares with
  MLflow's SHAP figure;
- the whole ``mlflow_explain.explain()`` (both methods, plots, report, logging to a SQLite
  store) against the two methods' compute time;
- peak memory of permutation importance on 50,000 x 100 with 10 repeats, in a child process.

Each figure is the median of several runs; the ratios and the targets of issue 7 (and issue 3's
plugin figure) are computed from them. Timings on a shared machine are noisy: the load average
is recorded with the results.

    python benchmarks/run.py [--quick] [--rows N] [--repeats N] [--output benchmarks/RESULTS.md]

``--quick`` (500 SHAP rows, 50 where MLflow falls back to shap's model-agnostic explainer, which
it does for regressors, multiclass models and Pipelines; at most 2000 validation rows; 2 runs per
figure, 1 through MLflow) runs in minutes on an idle machine; the full run explains 2000 rows, MLflow's default
``explainability_nsamples`` and mlflow_explain's default ``shap.max_rows``.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import importlib.metadata
import json
import logging
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
import warnings
from functools import partial
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import mlflow  # noqa: E402
from threadpoolctl import threadpool_limits  # noqa: E402

from benchmarks import peers  # noqa: E402
from benchmarks.cases import Case, build_cases, memory_case  # noqa: E402
from benchmarks.report import Row, Target, markdown, targets  # noqa: E402
from mlflow_explain.methods.permutation import permutation_importance  # noqa: E402

_PACKAGES = ("mlflow", "shap", "scikit-learn", "numpy", "pandas", "matplotlib", "lightgbm", "eli5")
_MEMORY = {"rows": 50_000, "features": 100, "repeats": 10}
_QUICK_VALIDATION_ROWS = 2000


def measure_case(case: Case, *, n_rows: int, n_repeats: int, repeats: int, heavy_repeats: int) -> Row:
    """Every tool on one case; ``heavy_repeats`` for the calls that log to MLflow."""
    row = Row(case=case, n_repeats=n_repeats)
    row.ours_permutation = peers.timed(partial(peers.ours_permutation, case, n_repeats), repeats)
    row.sklearn_permutation = peers.timed(partial(peers.sklearn_permutation, case, n_repeats), repeats)
    row.eli5_permutation = peers.timed(partial(peers.eli5_permutation, case, n_repeats), repeats)
    stacked = peers.limit_rows(case, n_repeats)
    row.limit = peers.timed(partial(peers.limit_predict, case, stacked), repeats)
    del stacked
    if row.ours_permutation.result is not None and row.sklearn_permutation.result is not None:
        row.importance_gap = peers.importance_gap(row.ours_permutation.result, row.sklearn_permutation.result)

    n_rows = min(n_rows, len(case.X))
    row.ours_shap = peers.timed(partial(peers.ours_shap, case, n_rows), repeats)
    ours = row.ours_shap.result
    row.shap_direct = peers.timed(partial(peers.shap_direct, case, ours), repeats)
    if row.shap_direct.result is not None:
        row.shap_gap = peers.shap_gap(case, ours, row.shap_direct.result)
    row.shap_rows = n_rows

    rows = case.X.iloc[ours.row_positions]  # MLflow and the plugin explain exactly these rows
    model_uri = peers.log_model(case)
    evaluate = partial(peers.mlflow_evaluate, model_uri, case, rows)
    with_shap = peers.timed(partial(evaluate, "default", peers.mlflow_default_config(n_rows, True)), heavy_repeats)
    without = peers.timed(partial(evaluate, "default", peers.mlflow_default_config(n_rows, False)), heavy_repeats)
    row.mlflow_shap = peers.shap_cost(with_shap, without)
    row.plugin, row.plugin_own = peers.plugin_evaluate(
        model_uri, case, rows, peers.plugin_config(n_rows), heavy_repeats
    )
    row.explain = peers.timed(partial(peers.whole_explain, case, n_rows, n_repeats), heavy_repeats)
    return row


def memory_probe() -> dict:
    """Peak resident memory and seconds of permutation importance on 50,000 x 100 with 10 repeats."""
    model, X, y = memory_case(_MEMORY["rows"], _MEMORY["features"])
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started = time.perf_counter()
    result = permutation_importance(model, X, y, n_repeats=_MEMORY["repeats"], random_state=0)
    return {
        "seconds": time.perf_counter() - started,
        "peak_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,  # ru_maxrss is in KiB on Linux
        "peak_before_mib": before / 1024,
        "data_mib": X.nbytes / 2**20,
        "predict_calls": result.n_predict_calls,
    }


def run_memory_probe() -> dict:
    """``memory_probe`` in a fresh child process, so its peak is not this process's."""
    completed = subprocess.run(
        [sys.executable, __file__, "--memory-probe"], capture_output=True, text=True, check=False
    )
    if completed.returncode != 0:
        return {"failure": completed.stderr.strip().splitlines()[-1] if completed.stderr.strip() else "no output"}
    return json.loads(completed.stdout.strip().splitlines()[-1])


def machine() -> str:
    """CPU, cores, memory, load, Python and package versions: the context the figures were measured in."""
    cpu = next(
        (line.split(":", 1)[1].strip() for line in _read_lines("/proc/cpuinfo") if line.startswith("model name")),
        platform.processor() or "unknown CPU",
    )
    memory_kib = next((int(line.split()[1]) for line in _read_lines("/proc/meminfo") if line.startswith("MemTotal")), 0)
    versions = []
    for package in _PACKAGES:
        try:
            versions.append(f"{package} {importlib.metadata.version(package)}")
        except importlib.metadata.PackageNotFoundError:
            versions.append(f"{package} not installed")
    load = ", ".join(f"{value:.1f}" for value in os.getloadavg())
    return (
        f"{cpu}, {os.cpu_count()} logical CPUs, {memory_kib / 2**20:.1f} GiB RAM, {platform.system()} "
        f"{platform.release()}; load average {load} (1, 5, 15 min); Python {platform.python_version()}; "
        + ", ".join(versions)
    )


def _read_lines(path: str) -> list[str]:
    try:
        return Path(path).read_text().splitlines()
    except OSError:
        return []


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="500 SHAP rows and fewer repeats (a few minutes)")
    parser.add_argument("--rows", type=int, help="SHAP rows explained (default 2000, or 500 with --quick)")
    parser.add_argument("--repeats", type=int, help="runs per figure (default 5, or 2 with --quick)")
    parser.add_argument("--permutation-repeats", type=int, default=5, help="shuffles per feature (default 5)")
    parser.add_argument("--output", type=Path, default=Path(__file__).with_name("RESULTS.md"), help="markdown file")
    parser.add_argument("--case", help="only the cases whose name contains this text")
    parser.add_argument("--threads", type=int, help="limit OpenMP/BLAS threads of every tool (default: libraries' own)")
    parser.add_argument("--no-memory", action="store_true", help="skip the peak-memory probe")
    parser.add_argument("--memory-probe", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.memory_probe:
        print(json.dumps(memory_probe()))
        return
    n_rows = args.rows or (500 if args.quick else 2000)
    repeats = args.repeats or (2 if args.quick else 5)
    heavy_repeats = 1 if args.quick else 3
    warnings.filterwarnings("ignore")
    logging.basicConfig(level=logging.ERROR)
    folder = tempfile.mkdtemp(prefix="mlflow_explain_bench_")
    mlflow.set_tracking_uri(f"sqlite:///{os.path.join(folder, 'mlflow.db')}")
    mlflow.set_experiment("benchmark")

    started = time.perf_counter()
    description = machine() + (
        f"; every tool limited to {args.threads} OpenMP/BLAS thread(s) (--threads)" if args.threads else ""
    )
    with threadpool_limits(args.threads) if args.threads else contextlib.nullcontext():
        _measure_all(args, n_rows, repeats, heavy_repeats, description, started)


def _measure_all(
    args: argparse.Namespace, n_rows: int, repeats: int, heavy_repeats: int, description: str, started: float
) -> None:
    """Measure every selected case and the memory probe, writing RESULTS.md as it goes."""
    rows = []
    for case in build_cases(lightgbm=_importable("lightgbm")):
        if args.case and args.case.lower() not in case.name.lower():
            continue
        case_rows = min(n_rows, 50) if args.quick and case.mlflow_model_agnostic else n_rows
        print(f"... {case.name}", file=sys.stderr, flush=True)
        if args.quick and len(case.X) > _QUICK_VALIDATION_ROWS:
            case = dataclasses.replace(case, X=case.X.iloc[:_QUICK_VALIDATION_ROWS], y=case.y[:_QUICK_VALIDATION_ROWS])
        rows.append(
            measure_case(
                case, n_rows=case_rows, n_repeats=args.permutation_repeats, repeats=repeats, heavy_repeats=heavy_repeats
            )
        )
        _write(
            args.output,
            rows,
            {"failure": "not run yet (the run stopped before the memory probe)"},
            time.perf_counter() - started,
            machine=description,
            repeats=(repeats, heavy_repeats),
        )
    print("... peak memory probe", file=sys.stderr, flush=True)
    memory = {"failure": "skipped (--no-memory)"} if args.no_memory else run_memory_probe()
    print(
        _write(
            args.output,
            rows,
            memory,
            time.perf_counter() - started,
            machine=description,
            repeats=(repeats, heavy_repeats),
        )
    )
    print(f"Written to {args.output}", file=sys.stderr)


def _write(output: Path, rows: list, memory: dict, seconds: float, *, machine: str, repeats: tuple[int, int]) -> str:
    """Write RESULTS.md (after every case, so a stopped run keeps what it measured) and return its text."""
    checks: list[Target] = targets(rows, memory, _MEMORY)
    text = markdown(
        rows,
        checks,
        memory,
        _MEMORY,
        machine=machine,
        command=" ".join(["python", *sys.argv]),
        repeats=repeats,
        seconds=seconds,
    )
    output.write_text(text, encoding="utf-8")
    return text


def _importable(module: str) -> bool:
    try:
        __import__(module)
    except ImportError:
        return False
    return True


if __name__ == "__main__":
    main()

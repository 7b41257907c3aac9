"""What leaving ``mlflow_explain.autolog()`` on costs: per fit that is not explained, and the call itself.

1. Per-fit overhead, in this process: fits autolog leaves alone, called as a user's code calls them
   (``StandardScaler().fit(X)``, ``StandardScaler().fit(X, y)``, ``LabelEncoder().fit(y)``) and as a
   library does (the label encoding inside ``f1_score(average="macro")``), timed in blocks of
   ``--fits`` calls with autolog off and on alternately (so a shared machine's load falls on both
   alike), in CPU seconds of this process (which other processes' load inflates far less than wall
   time); the figure is the fastest block's seconds per call (as ``timeit`` advises: load only
   adds time), also the median over ``--blocks`` blocks, and the overhead the difference.
   Nothing is explained, so no tracking store is touched.
2. The ``autolog()`` call, in fresh subprocesses (median of ``--processes``): after
   ``import sklearn.base`` (the usual case: the user imported scikit-learn first), and before
   scikit-learn is imported at all; the import of ``mlflow_explain.autolog`` is timed apart.

    python benchmarks/autolog_overhead.py [--fits 2000] [--blocks 7] [--processes 3] [--tree PATH] [--call-only]

``--tree`` times the ``autolog()`` call of another checkout (for example main) instead of this one;
``--call-only`` skips part 1 (which needs this checkout's autolog, which explains nothing here).
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

_CALL_PROBE = """
import importlib, json, time
started = time.perf_counter()
if {sklearn_first}:
    import sklearn.base
imported_sklearn = time.perf_counter()
autolog_module = importlib.import_module("mlflow_explain.triggers.autolog.autolog")
imported_plugin = time.perf_counter()
autolog_module.autolog()
called = time.perf_counter()
print(json.dumps({{"sklearn": imported_sklearn - started, "module": imported_plugin - imported_sklearn,
                  "call": called - imported_plugin}}))
"""


def fit_cases() -> dict[str, Callable[[], object]]:
    """Fits autolog leaves alone, on 200 rows of the breast-cancer data (as a user's or a library's code calls them)."""
    from sklearn.datasets import load_breast_cancer
    from sklearn.metrics import f1_score
    from sklearn.preprocessing import LabelEncoder, StandardScaler

    X, y = load_breast_cancer(return_X_y=True)
    X, y = X[:200, :5], y[:200]
    return {
        "StandardScaler().fit(X)": lambda: StandardScaler().fit(X),
        "StandardScaler().fit(X, y)": lambda: StandardScaler().fit(X, y),
        "LabelEncoder().fit(y)": lambda: LabelEncoder().fit(y),
        'f1_score(y, y, average="macro") (library fits inside)': lambda: f1_score(y, y, average="macro"),
    }


def per_fit_seconds(fit: Callable[[], object], fits: int, blocks: int) -> dict[bool, list[float]]:
    """CPU seconds per call of each block of ``fits`` calls, autolog off (False) and on (True) alternately."""
    autolog_module = importlib.import_module(
        "mlflow_explain.triggers.autolog.autolog"
    )  # the module, not the package's function
    seconds: dict[bool, list[float]] = {False: [], True: []}
    for _ in range(blocks):
        for on in (False, True):
            if on:
                autolog_module.autolog()
            started = time.process_time()
            for _ in range(fits):
                fit()
            seconds[on].append((time.process_time() - started) / fits)
            if on:
                autolog_module.autolog(disable=True)
    return seconds


def call_seconds(tree: Path, sklearn_first: bool, processes: int) -> dict[str, float]:
    """Median seconds of each step of ``_CALL_PROBE`` over ``processes`` fresh interpreters."""
    env = {**os.environ, "PYTHONPATH": str(tree)}
    probe = _CALL_PROBE.format(sklearn_first=sklearn_first)
    runs = [
        json.loads(
            subprocess.run(
                [sys.executable, "-c", probe], capture_output=True, text=True, env=env, check=True
            ).stdout.splitlines()[-1]
        )
        for _ in range(processes)
    ]
    return {step: statistics.median(run[step] for run in runs) for step in runs[0]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--fits", type=int, default=2000, help="calls per timed block")
    parser.add_argument("--blocks", type=int, default=7, help="timed blocks per case, with autolog off and on")
    parser.add_argument("--processes", type=int, default=3, help="fresh interpreters timing the autolog() call")
    parser.add_argument("--tree", type=Path, default=REPO, help="checkout whose autolog() call is timed")
    parser.add_argument("--call-only", action="store_true", help="time only the autolog() call")
    args = parser.parse_args()
    print(f"load average before: {' '.join(f'{load:.2f}' for load in os.getloadavg())}\n")
    if not args.call_only:
        sys.path.insert(0, str(REPO))
        print(f"Per fit not explained, CPU time ({args.fits} calls per block, median of {args.blocks} blocks):\n")
        print("| fit | off, fastest (µs) | on, fastest (µs) | overhead (µs) | overhead, medians (µs) |")
        print("|---|---:|---:|---:|---:|")
        for name, fit in fit_cases().items():
            seconds = per_fit_seconds(fit, args.fits, args.blocks)
            off, on = min(seconds[False]), min(seconds[True])
            medians = statistics.median(seconds[True]) - statistics.median(seconds[False])
            print(f"| {name} | {off * 1e6:.1f} | {on * 1e6:.1f} | {(on - off) * 1e6:+.1f} | {medians * 1e6:+.1f} |")
    print(f"\nThe autolog() call in a fresh interpreter ({args.tree}, median of {args.processes}):\n")
    print("| sklearn imported first | import sklearn.base (s) | import mlflow_explain.autolog (s) | autolog() (s) |")
    print("|---|---:|---:|---:|")
    for sklearn_first in (True, False):
        steps = call_seconds(args.tree, sklearn_first, args.processes)
        print(
            f"| {'yes' if sklearn_first else 'no'} | {steps['sklearn']:.3f} | {steps['module']:.3f} | "
            f"{steps['call']:.3f} |"
        )
    print(f"\nload average after: {' '.join(f'{load:.2f}' for load in os.getloadavg())}")


if __name__ == "__main__":
    main()

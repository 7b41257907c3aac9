"""Peak memory of permutation importance on 50,000 rows x 100 features with 10 repeats.

The permuted copies would fill 50,000 x 100 x 10 x 8 bytes x 100 features = 40 GB if stacked
in one batch; the engine stacks only what ``memory_budget_mb`` allows per predict call. This
prints the process's peak resident set size (what ``/usr/bin/time -v`` reports as "Maximum
resident set size"), the peak traced by ``tracemalloc`` during the call, and the wall time.

    python benchmarks/permutation_memory.py [--rows 50000] [--features 100] [--repeats 10] [--budget-mb 512]
"""

from __future__ import annotations

import argparse
import resource
import time
import tracemalloc

import numpy as np
from sklearn.linear_model import Ridge

from mlflow_explain.methods.permutation import permutation_importance


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=50_000)
    parser.add_argument("--features", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--budget-mb", type=float, default=512)
    parser.add_argument("--n-jobs", type=int, default=1)
    args = parser.parse_args()
    rng = np.random.RandomState(0)
    X = rng.randn(args.rows, args.features)
    y = X @ rng.randn(args.features) + rng.randn(args.rows)
    model = Ridge().fit(X, y)
    wanted_gb = args.rows * args.features * 8 * args.features * args.repeats / 1e9
    tracemalloc.start()
    started = time.perf_counter()
    result = permutation_importance(
        model, X, y, n_repeats=args.repeats, memory_budget_mb=args.budget_mb, n_jobs=args.n_jobs
    )
    seconds = time.perf_counter() - started
    _, traced_peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    peak_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux reports KiB
    print(
        f"{args.rows} x {args.features}, {args.repeats} repeats, memory_budget_mb={args.budget_mb}, "
        f"n_jobs={args.n_jobs}: all permuted copies at once would be {wanted_gb:.0f} GB"
    )
    print(f"{result.n_predict_calls} predict calls of up to {result.copies_per_call} copies; {seconds:.1f} s")
    print(
        f"peak RSS of the process: {peak_rss / 2**30:.2f} GiB; tracemalloc peak during the call: "
        f"{traced_peak / 2**30:.2f} GiB; limit 2 GiB: {'met' if peak_rss < 2**31 else 'NOT met'}"
    )


if __name__ == "__main__":
    main()

"""How long ``load_config`` takes on the hot path of ``explain()`` (defaults are built once per process).

    python benchmarks/config_load.py [--number 2000]

Prints the best of five timeit runs, in microseconds per call, of: the defaults alone, a small
nested dict, a YAML string override, and an ExplainConfig passed back in; and the first call in
a fresh process (where the defaults are built), measured in a subprocess.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import timeit
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from mlflow_explain.config import load_config  # noqa: E402

_FIRST_CALL = (
    "import time; from mlflow_explain.config import load_config; "
    "t = time.perf_counter(); load_config(); print((time.perf_counter() - t) * 1e6)"
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--number", type=int, default=2000)
    args = parser.parse_args()
    ready = load_config()
    cases = {
        "load_config()": lambda: load_config(),
        'load_config({"shap": {"max_rows": 5}})': lambda: load_config({"shap": {"max_rows": 5}}),
        'load_config(overrides=["permutation.n_repeats=10"])': lambda: load_config(
            overrides=["permutation.n_repeats=10"]
        ),
        "load_config(an ExplainConfig)": lambda: load_config(ready),
    }
    print("| call | µs per call (best of 5) |\n|---|---:|")
    for name, call in cases.items():
        best = min(timeit.repeat(call, number=args.number, repeat=5)) / args.number
        print(f"| {name} | {best * 1e6:.1f} |")
    root = str(Path(__file__).resolve().parent.parent)
    first = subprocess.run([sys.executable, "-c", _FIRST_CALL], capture_output=True, text=True, cwd=root, check=True)
    print(f"| first load_config() in a fresh process | {float(first.stdout):.0f} |")


if __name__ == "__main__":
    main()

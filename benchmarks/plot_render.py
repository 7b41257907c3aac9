"""Time drawing every figure of a sample explanation and comparison as SVG (laid out, text measured, rendered).

Uses the samples of :mod:`benchmarks.report_render` (a forest on the diabetes data, three made-up
runs) and prints the median milliseconds per figure, so a layout change that slows the charts shows.

    python benchmarks/plot_render.py [--repeats 20]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.report_render import _median_ms, comparison_sample, tabular_sample  # noqa: E402
from mlflow_explain.output import plots  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args()
    explanation, _ = tabular_sample()
    comparison, _ = comparison_sample(explanation)
    figures = plots.explanation_figures(explanation, 3) | plots.comparison_figures(comparison)
    print("| figure | median ms |\n|---|---|")
    for name, figure in figures.items():
        print(f"| {name} | {_median_ms(lambda figure=figure: plots.render(figure), args.repeats):.1f} |")


if __name__ == "__main__":
    main()

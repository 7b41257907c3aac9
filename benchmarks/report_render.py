"""Render the HTML reports of sample explanations that fill every section, and time the rendering.

Builds, without MLflow, (1) a tabular explanation of a random forest on the diabetes data with
hostile feature names, an error, a warning, diagnostics and drift against a made-up baseline,
(2) a Grad-CAM explanation of the generated-pattern CNN of the tests with hostile class names,
(3) a comparison of three made-up runs with hostile run names; writes ``report.html``,
``image_report.html`` and ``comparison.html`` into ``--out`` (to open in a browser) and prints
the median milliseconds of each render (figures drawn once, outside the timing).

    python benchmarks/report_render.py [--out test-artifacts/report_sample] [--repeats 20]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sklearn.datasets import load_diabetes  # noqa: E402
from sklearn.ensemble import RandomForestRegressor  # noqa: E402

from mlflow_explain.engines.comparison import compare_runs, drift  # noqa: E402
from mlflow_explain.engines.diagnostics import diagnose  # noqa: E402
from mlflow_explain.methods.permutation import permutation_importance  # noqa: E402
from mlflow_explain.methods.shap import shap_values  # noqa: E402
from mlflow_explain.models import detect_task  # noqa: E402
from mlflow_explain.output import plots, report  # noqa: E402
from mlflow_explain.results import Explanation, RunImportances, Task  # noqa: E402

HOSTILE = [
    "<script>document.title='pwned'</script>",
    "<img src=x onerror=\"document.body.setAttribute('data-pwned','img')\">",
    "quote'\"`&amp;",
    "température °C",
]


def tabular_sample() -> tuple[Explanation, dict[str, bytes]]:
    """A regression explanation with every tabular section filled: its report's inputs."""
    X, y = load_diabetes(return_X_y=True, as_frame=True)
    X = X.rename(columns=dict(zip(X.columns[:4], HOSTILE, strict=True)))
    model = RandomForestRegressor(n_estimators=20, max_depth=6, random_state=0).fit(X[:300], y[:300])
    X_val, y_val = X[300:], y[300:].to_numpy()
    task = detect_task(model, y_val)
    names = [str(column) for column in X_val.columns]
    explanation = Explanation(
        task=task,
        feature_names=names,
        n_rows=len(X_val),
        config={},
        model_type=type(model).__name__,
        results={
            "permutation": permutation_importance(
                model, X_val, y_val, n_repeats=3, scoring=["r2", "neg_mean_absolute_error"]
            ),
            "shap": shap_values(model, X_val, task, feature_names=names, max_rows=100, local_rows=2),
        },
        timings={"permutation": 0.41, "shap": 0.12, HOSTILE[0]: 0.01},
        versions={"mlflow_explain": "sample", "scikit-learn": "1.x", HOSTILE[1]: "<b>1</b>"},
        warnings=[f"Column {HOSTILE[0]} has 3 missing values."],
        errors={"gradcam": f"ValueError: layer {HOSTILE[1]} not found"},
    )
    explanation.diagnostics = diagnose(explanation, X_val)
    table = explanation.importances
    shuffled = table.assign(importance=table["importance"].sample(frac=1.0, random_state=1).to_numpy())
    baseline = RunImportances("0123456789abcdef", HOSTILE[0], HOSTILE[1], 0, shuffled)
    explanation.drift = drift(baseline, table, k=5, threshold=0.9)
    images = {path: plots.render(figure) for path, figure in plots.explanation_figures(explanation, 3).items()}
    return explanation, images


def image_sample() -> tuple[Explanation, dict[str, bytes]]:
    """A Grad-CAM explanation of the tests' pattern CNN (trained small), with hostile class names."""
    import torch

    from mlflow_explain.methods.gradcam import gradcam
    from tests.gradcam_models import pattern_images, trained_pattern_net

    torch.set_num_threads(1)
    model = trained_pattern_net(n_train=400, epochs=4)
    images, labels, _ = pattern_images(60, seed=1)
    result = gradcam(model, images, labels, HOSTILE[:3], max_images=12)
    explanation = Explanation(
        task=Task("multiclass", tuple(HOSTILE[:3])),
        feature_names=[],
        n_rows=len(images),
        config={},
        model_type=type(model).__name__,
        gradcam=result,
        timings={"gradcam": 1.0},
        versions={"mlflow_explain": "sample"},
    )
    figures = plots.explanation_figures(explanation, dependence_top_k=0)
    return explanation, {path: plots.render(figure) for path, figure in figures.items()}


def comparison_sample(explanation: Explanation):
    """A comparison of three made-up runs (importances of ``explanation``, scaled and shuffled)."""
    table = explanation.importances
    rng = np.random.RandomState(0)
    runs = []
    for i, name in enumerate([HOSTILE[0], "baseline", HOSTILE[2]]):
        scaled = table.assign(importance=table["importance"] * rng.rand(len(table)))
        runs.append(RunImportances(f"{i:032x}", name, HOSTILE[1], i, scaled))
    comparison = compare_runs(runs, top_k=5, notes=[f"Run {HOSTILE[0]} has no explanation; skipped."])
    return comparison, {name: plots.render(figure) for name, figure in plots.comparison_figures(comparison).items()}


def _median_ms(render, repeats: int) -> float:
    render()
    seconds = []
    for _ in range(repeats):
        started = time.perf_counter()
        render()
        seconds.append(time.perf_counter() - started)
    return 1000 * statistics.median(seconds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("test-artifacts/report_sample"))
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    tabular, tabular_images = tabular_sample()
    images, image_images = image_sample()
    comparison, comparison_images = comparison_sample(tabular)
    pages = {
        "report.html": lambda: report.render_report(tabular, tabular_images),
        "image_report.html": lambda: report.render_report(images, image_images),
        "comparison.html": lambda: report.render_comparison(comparison, comparison_images),
    }
    print("| page | KiB | render ms (median) |\n|---|---:|---:|")
    for name, render in pages.items():
        html = render()
        (args.out / name).write_text(html, encoding="utf-8")
        print(f"| {name} | {len(html.encode()) / 1024:.0f} | {_median_ms(render, args.repeats):.2f} |")


if __name__ == "__main__":
    main()

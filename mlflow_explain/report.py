"""One self-contained HTML page from an Explanation and its PNG figures (no MLflow).

Everything is inline (images as data URIs, CSS in the page, the force plot in an iframe's
srcdoc), so the page renders in the MLflow UI's artifact viewer without fetching anything.
Every name that comes from the data is HTML-escaped.
"""

from __future__ import annotations

import base64
from html import escape

from .results import Comparison, Explanation, PermutationResult

_STYLE = """
body { font-family: -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; margin: 1.5em; color: #222;
       max-width: 960px; }
h1 { font-size: 1.5em; } h2 { font-size: 1.2em; border-bottom: 1px solid #ddd; padding-bottom: .2em; }
table { border-collapse: collapse; margin: .5em 0 1em; font-size: .9em; }
td, th { border: 1px solid #ddd; padding: .25em .6em; text-align: left; }
td.num { text-align: right; font-family: monospace; }
.status-ok { color: #1a7f37; } .status-partial { color: #b35900; } .status-failed { color: #c62828; }
.error { background: #fdecea; border-left: 4px solid #c62828; padding: .4em .8em; }
.warning { background: #fff8e1; border-left: 4px solid #f9a825; padding: .4em .8em; }
img { max-width: 100%; margin: .3em 0; } .note { color: #555; font-size: .9em; }
iframe { width: 100%; height: 170px; border: 1px solid #ddd; }
"""


def render_report(explanation: Explanation, images: dict[str, bytes], force_plot: str | None = None) -> str:
    """The report page: header, importance tables and plots, SHAP, local explanations, timings, errors."""
    sections = [
        _header(explanation),
        _problems(explanation),
        _drift_section(explanation, images),
        _diagnostics_section(explanation),
        _permutation_section(explanation, images),
        _shap_section(explanation, images),
        _local_section(explanation, images, force_plot),
        _gradcam_section(explanation, images),
        _details(explanation),
    ]
    title = f"mlflow_explain report: {escape(explanation.model_type)}"
    body = "\n".join(section for section in sections if section)
    return (
        f"<!DOCTYPE html>\n<html><head><meta charset='utf-8'><title>{title}</title>"
        f"<style>{_STYLE}</style></head>\n<body>\n<h1>{title}</h1>\n{body}\n</body></html>\n"
    )


def _header(explanation: Explanation) -> str:
    task = explanation.task
    classes = ", ".join(escape(str(c)) for c in task.classes)
    rows = [
        ("Model", escape(explanation.model_type)),
        ("Task", escape(task.kind) + (f" (classes: {classes})" if classes else "")),
        ("Validation rows", str(explanation.n_rows)),
        ("Features", str(len(explanation.feature_names))),
        ("Status", f"<span class='status-{explanation.status}'>{explanation.status}</span>"),
        ("mlflow_explain", escape(explanation.versions.get("mlflow_explain", "unknown"))),
    ]
    return _table([], rows)


def _problems(explanation: Explanation) -> str:
    errors = "".join(
        f"<p class='error'><b>{escape(step)} failed:</b> {escape(message)}</p>"
        for step, message in explanation.errors.items()
    )
    warnings = "".join(f"<p class='warning'>{escape(message)}</p>" for message in explanation.warnings)
    return errors + warnings


def _drift_section(explanation: Explanation, images: dict[str, bytes]) -> str:
    drift = explanation.drift
    if drift is None:
        return ""
    verdict = (
        (
            f"<p class='error'><b>Explanation drift alert:</b> nDCG@{drift.top_k} = {drift.ndcg:.3f} is below "
            f"{drift.threshold:.2f}"
        )
        if drift.alert
        else (f"<p class='note'>No drift: nDCG@{drift.top_k} = {drift.ndcg:.3f} (threshold {drift.threshold:.2f})")
    )
    parts = [
        "<h2>Against the baseline run</h2>",
        f"{verdict} against run {escape(drift.baseline_label)} ({escape(drift.baseline_run_id)}), by "
        f"{escape(drift.method)} importance; Spearman {drift.spearman:.3f}, top-{drift.top_k} overlap "
        f"{drift.top_k_overlap:.0%}.</p>",
    ]
    if len(drift.moved):
        rows = [
            (escape(str(r.feature)), str(int(r.baseline_rank)), str(int(r.rank)), f"{int(r.shift):+d}")
            for r in drift.moved.head(15).itertuples()
        ]
        parts.append("<p>Features that moved (rank 1 = most important):</p>")
        parts.append(_table(["Feature", "Baseline rank", "Rank", "Moved up by"], rows))
    parts += [_image(images, path) for path in sorted(images) if path.startswith("compare/")]
    return "\n".join(parts)


def _diagnostics_section(explanation: Explanation) -> str:
    if not explanation.diagnostics:
        return ""
    items = "".join(
        f"<p class='{'warning' if finding.severity == 'warning' else 'note'}'>{escape(finding.message)}</p>"
        for finding in sorted(explanation.diagnostics, key=lambda finding: finding.severity != "warning")
    )
    return f"<h2>Diagnostics</h2>{items}"


def _permutation_section(explanation: Explanation, images: dict[str, bytes]) -> str:
    result = explanation.permutation
    if result is None:
        return ""
    parts = [
        "<h2>Permutation importance</h2>",
        f"<p class='note'>Score drop when one feature is shuffled, over {result.n_repeats} repeats on "
        f"{result.n_rows} rows; evaluated in {result.n_predict_calls} predict call(s) of up to "
        f"{result.copies_per_call} permuted copies.</p>",
    ]
    for scorer in result.scorer_names:
        parts.append(f"<h3>{escape(scorer)} (baseline {result.baseline_scores[scorer]:.4f})</h3>")
        parts.append(_weights_table(result, scorer))
    parts += [_image(images, path) for path in sorted(images) if path.startswith("permutation_importance")]
    return "\n".join(parts)


def _weights_table(result: PermutationResult, scorer: str) -> str:
    """ELI5's show_weights table: weight ± 2 std, shaded green by weight, largest first."""
    mean, std = result.mean(scorer), result.std(scorer)
    largest = max(float(abs(mean).max()), 1e-12)
    rows = []
    for i in sorted(range(len(mean)), key=lambda i: -mean[i]):
        alpha = max(0.0, float(mean[i])) / largest
        weight = (
            f"<td class='num' style='background: rgba(0, 160, 60, {alpha * 0.8 + 0.05:.2f})'>"
            f"{mean[i]:.4f} ± {2 * std[i]:.4f}</td>"
        )
        rows.append(weight + f"<td>{escape(result.feature_names[i])}</td>")
    header = "<tr><th>Weight</th><th>Feature</th></tr>"
    return f"<table>{header}" + "".join(f"<tr>{row}</tr>" for row in rows) + "</table>"


def _shap_section(explanation: Explanation, images: dict[str, bytes]) -> str:
    result = explanation.shap
    if result is None:
        return ""
    error = "not checked" if result.max_additivity_error is None else f"{result.max_additivity_error:.2e}"
    parts = [
        "<h2>SHAP values</h2>",
        f"<p class='note'><b>{escape(result.algorithm)} explainer</b>: {escape(result.reason)}. "
        f"{result.n_explained} rows explained, values in {escape(result.output_space)} space; "
        f"largest gap between values + base value and the model output: {error}.</p>",
    ]
    for prefix in ("shap_bar", "shap_beeswarm", "dependence/"):
        parts += [_image(images, path) for path in sorted(images) if path.startswith(prefix)]
    return "\n".join(parts)


def _local_section(explanation: Explanation, images: dict[str, bytes], force_plot: str | None) -> str:
    waterfalls = [_image(images, path) for path in sorted(images) if path.startswith("local/")]
    if not waterfalls and force_plot is None:
        return ""
    parts = [
        "<h2>Local explanations</h2>",
        "<p class='note'>A few rows chosen at random (seeded): how each feature moves the model's output "
        "away from the base value.</p>",
    ]
    if force_plot is not None:
        parts.append(f"<iframe title='force plot' srcdoc=\"{escape(force_plot, quote=True)}\"></iframe>")
    return "\n".join(parts + waterfalls)


def _gradcam_section(explanation: Explanation, images: dict[str, bytes]) -> str:
    result = explanation.gradcam
    if result is None:
        return ""
    fraction = f"{result.deletion_fraction:.0%}"
    fill = "blurred" if result.deletion_fill == "blur" else "set to zero"
    accuracy = (
        ""
        if result.labels is None
        else (
            f" {int(result.misclassified.sum())} of them are misclassified, "
            f"{int(result.misclassified[result.shown].sum())} "
            "of those shown (misclassified images take up to half of the places, and at least one)."
        )
    )
    parts = [
        "<h2>Grad-CAM</h2>",
        f"<p class='note'>Heatmaps of layer <b>{escape(result.target_layer)}</b> (Captum LayerGradCam, on "
        f"{escape(result.device)}) for {len(result.positions)} of {result.n_images} images; "
        f"{len(result.shown)} shown.{accuracy}</p>",
        f"<p>Faithfulness: when the {fraction} most highlighted pixels are {fill}, the predicted class's probability "
        f"drops by <b>{result.deletion_drop:.3f}</b> on average, against <b>{result.random_drop:.3f}</b> for a "
        f"random {fraction} of the pixels (metrics gradcam/deletion_drop and gradcam/random_drop). A heatmap that "
        "points at what the model uses gives a clearly larger first drop.</p>",
    ]
    for prefix in ("gradcam/misclassified", "gradcam/mean_heatmaps", "gradcam/class_"):
        parts += [_image(images, path) for path in sorted(images) if path.startswith(prefix)]
    return "\n".join(parts)


def _details(explanation: Explanation) -> str:
    timings = _table(
        ["Step", "Seconds"], [(escape(name), f"{seconds:.2f}") for name, seconds in explanation.timings.items()]
    )
    versions = _table(["Package", "Version"], [(escape(name), escape(v)) for name, v in explanation.versions.items()])
    return f"<h2>Timings</h2>{timings}<h2>Versions</h2>{versions}"


def _image(images: dict[str, bytes], path: str) -> str:
    """One SVG figure as an ``<img>`` data URI (an SVG inside ``<img>`` never runs scripts)."""
    encoded = base64.b64encode(images[path]).decode("ascii")
    return f"<div><img alt='{escape(path, quote=True)}' src='data:image/svg+xml;base64,{encoded}'></div>"


def _table(header: list[str], rows: list[tuple[str, ...]]) -> str:
    """A table of cells that are already HTML (escape data before it gets here)."""
    head = "<tr>" + "".join(f"<th>{cell}</th>" for cell in header) + "</tr>" if header else ""
    body = "".join("<tr>" + "".join(f"<td>{cell}</td>" for cell in row) + "</tr>" for row in rows)
    return f"<table>{head}{body}</table>"


def render_comparison(comparison: Comparison, images: dict[str, bytes]) -> str:
    """The comparison page: runs, notes, heatmaps, rank shifts and the pairwise stability table."""
    runs = _table(
        ["Run", "Run id", "Experiment"],
        [(escape(run.run_name), escape(run.run_id), escape(run.experiment_name)) for run in comparison.runs],
    )
    notes = "".join(f"<p class='warning'>{escape(note)}</p>" for note in comparison.notes)
    stability = ""
    if len(comparison.stability):
        k = comparison.top_k
        rows = [
            (
                escape(r["label_a"]),
                escape(r["label_b"]),
                escape(r["method"]),
                f"{r['spearman']:.3f}",
                f"{r[f'top_{k}_overlap']:.0%}",
                f"{r[f'ndcg_at_{k}']:.3f}",
            )
            for _, r in comparison.stability.iterrows()
        ]
        stability = "<h2>Pairwise stability</h2>" + _table(
            ["Run A", "Run B", "Method", "Spearman", f"Top-{k} overlap", f"nDCG@{k} (B against A)"], rows
        )
    figures = "".join(_image(images, path) for path in sorted(images))
    title = f"mlflow_explain comparison of {len(comparison.runs)} run(s)"
    return (
        f"<!DOCTYPE html>\n<html><head><meta charset='utf-8'><title>{title}</title><style>{_STYLE}</style>"
        f"</head>\n<body>\n<h1>{title}</h1>\n{runs}{notes}<h2>Importances</h2>{figures}{stability}\n</body></html>\n"
    )

"""One self-contained HTML page from an Explanation, or a Comparison, and its SVG figures (no MLflow).

The markup is in Jinja2 templates under ``templates/``: ``base.html`` (head, style, title,
header, problems, footer) is shared by ``report.html`` and ``comparison.html``. This module
chooses what each section shows and renders it. Everything is inline (images as data URIs,
CSS in the page), so the page renders in the MLflow UI's artifact viewer without fetching
anything. Autoescape is on and no template marks anything safe: every name and message that
comes from the data is shown as text.
"""

from __future__ import annotations

import base64
import functools
from collections.abc import Callable
from typing import Any

import jinja2
import numpy as np

from .._version import __version__
from ..results import (
    Comparison,
    Explanation,
    ImageAttributionResult,
    PermutationResult,
    ShapResult,
    TabularResult,
    TokenResult,
    primary_ranking,
)
from . import token_views
from .plots import importance_text
from .svg import format_fixed

_MOVED_SHOWN = 15  # features listed in the drift section's table, largest rank shift first


def render_report(explanation: Explanation, images: dict[str, bytes]) -> str:
    """The report page of one explanation.

    Parameters
    ----------
    explanation : Explanation
        What the methods produced (sections without a result are left out).
    images : dict of str to bytes
        SVG figures by their path under the artifact folder (``shap_bar.svg``, ``local/...``).

    Returns
    -------
    str
        The HTML page: header, problems, drift, diagnostics, one section per tabular method
        (permutation importance, SHAP with its local explanations), image attributions (compared, then
        one section per method), timings and versions. A method's section is the template
        ``templates/methods/<method>.html``, else the generic ``tabular.html`` or ``image.html`` there.
    """
    return _render(
        "report.html",
        title=f"mlflow_explain report: {explanation.model_type}",
        header=_header(explanation),
        errors=explanation.errors,
        warnings=explanation.warnings,
        version=explanation.versions.get("mlflow_explain", "unknown"),
        drift=_drift(explanation, images),
        no_baseline_reason=explanation.no_baseline_reason,
        diagnostics=sorted(explanation.diagnostics, key=lambda finding: finding.severity != "warning"),
        tabular_sections=[_tabular_section(result, explanation, images) for result in explanation.tabular_results],
        image_comparison=_image_comparison(explanation),
        image_sections=[_image_section(result, images) for result in explanation.image_results],
        timings=explanation.timings,
        versions=explanation.versions,
    )


def render_comparison(comparison: Comparison, images: dict[str, bytes]) -> str:
    """The page of a comparison run: its runs, notes, importance figures and pairwise stability.

    Parameters
    ----------
    comparison : Comparison
        The compared runs and their stability table.
    images : dict of str to bytes
        SVG figures by file name, shown in name order.

    Returns
    -------
    str
        The HTML page.
    """

    k = comparison.top_k
    experiments = dict.fromkeys(run.experiment_name for run in comparison.runs)
    return _render(
        "comparison.html",
        title=f"mlflow_explain comparison of {len(comparison.runs)} run(s)",
        header=[_row("Runs", len(comparison.runs)), _row("Experiments", ", ".join(experiments))],
        errors={},
        warnings=comparison.notes,
        version=__version__,
        runs=comparison.runs,
        figures=_figures(images, ""),
        top_k=k,
        stability=[
            {
                "label_a": row["label_a"],
                "label_b": row["label_b"],
                "method": row["method"],
                "spearman": row["spearman"],
                "overlap": row[f"top_{k}_overlap"],
                "ndcg": row[f"ndcg_at_{k}"],
            }
            for row in comparison.stability.to_dict("records")
        ],
    )


def _figures(images: dict[str, bytes], *prefixes: str) -> list[dict[str, str]]:
    """The figures whose path starts with each prefix in turn (in path order within a prefix), for ``<img>``.

    Each is a data URI: an SVG shown through ``<img>`` never runs scripts.
    """
    return [
        {"alt": path, "src": "data:image/svg+xml;base64," + base64.b64encode(images[path]).decode("ascii")}
        for prefix in prefixes
        for path in sorted(images)
        if path.startswith(prefix)
    ]


def _row(label: str, value: Any, status: str | None = None) -> dict[str, Any]:
    return {"label": label, "value": value, "status": status}


def _header(explanation: Explanation) -> list[dict[str, Any]]:
    task = explanation.task
    names = task.class_names or task.classes
    classes = ", ".join(str(c) if c == n else f"{c}: {n}" for c, n in zip(task.classes, names, strict=True))
    return [
        _row("Model", explanation.model_type),
        _row("Model family", explanation.model_family),
        _row("Task", task.kind + (f" (classes: {classes})" if classes else "")),
        *_inputs_rows(explanation),
        _row("Status", explanation.status, status=explanation.status),
        _row("mlflow_explain", explanation.versions.get("mlflow_explain", "unknown")),
    ]


def _inputs_rows(explanation: Explanation) -> list[dict[str, Any]]:
    """What was explained, in its own words: images and classes, texts, or validation rows and features."""
    if explanation.inputs == "images":
        results = explanation.image_results
        explained = str(explanation.n_rows)
        if results:
            first = results[0]  # every method explains the same images
            explained = f"{len(first.positions)} of the {first.n_images} passed; {len(first.shown)} in the figures"
        return [_row("Images explained", explained), _row("Classes", len(explanation.task.classes))]
    if explanation.inputs == "texts":
        return [_row("Texts explained", _rows_used(explanation, "tokens.max_texts"))]
    return [
        _row("Validation rows", _rows_used(explanation, "validation.max_rows")),
        _row("Features", len(explanation.feature_names)),
    ]


def _rows_used(explanation: Explanation, cap: str) -> str:
    """The rows used, and how many were passed when the setting ``cap`` cut them."""
    passed = explanation.n_rows_passed
    if passed is None or passed == explanation.n_rows:
        return str(explanation.n_rows)
    return f"{explanation.n_rows} of the {passed} passed ({cap})"


def _drift(explanation: Explanation, images: dict[str, bytes]) -> dict[str, Any] | None:
    drift = explanation.drift
    if drift is None:
        return None
    moved = [
        {"feature": r.feature, "baseline_rank": int(r.baseline_rank), "rank": int(r.rank), "shift": int(r.shift)}
        for r in drift.moved.head(_MOVED_SHOWN).itertuples()
    ]
    return {"result": drift, "moved": moved, "figures": _figures(images, "compare/")}


def _tabular_section(result: TabularResult, explanation: Explanation, images: dict[str, bytes]) -> dict[str, Any]:
    """A tabular method's section: the parts its template reads (``_SECTION_PARTS``), else the generic ones."""
    parts = _SECTION_PARTS.get(result.method, _importance_parts)
    return {"result": result, "template": _method_template(result.method, "tabular.html")} | parts(
        result, explanation, images
    )


def _importance_parts(result: TabularResult, explanation: Explanation, images: dict[str, bytes]) -> dict[str, Any]:
    """A method's importances for its primary output, largest first, and its figures (``<method>*``)."""
    rows = primary_ranking(explanation.importances, result)
    return {"rows": rows.to_dict("records"), "figures": _figures(images, result.method)}


def _permutation_parts(result: PermutationResult, explanation: Explanation, images: dict[str, bytes]) -> dict[str, Any]:
    weights = {scorer: _weights(result, scorer) for scorer in result.scorer_names}
    return {"weights": weights, "figures": _figures(images, "permutation_importance")}


def _shap_parts(result: ShapResult, explanation: Explanation, images: dict[str, bytes]) -> dict[str, Any]:
    return {
        "figures": _figures(images, "shap_bar", "shap_beeswarm", "dependence/"),
        "local": _figures(images, "local/"),
    }


def _weights(result: PermutationResult, scorer: str) -> list[dict[str, Any]]:
    """ELI5's show_weights rows: weight ± 1 std as the chart's tooltip writes it, shade (share of the largest), largest
    first in the order of importances.csv's ranks.

    ELI5 writes ± 2 std; one convention across the report, chart and metrics is less misleading.
    """
    mean, std = result.mean(scorer), result.std(scorer)
    largest = max(float(abs(mean).max()), 1e-12)
    return [
        {
            "weight": importance_text(mean[i], std[i]),
            "shade": max(0.0, float(mean[i])) / largest,
            "feature": result.feature_names[i],
        }
        for i in np.argsort(-mean, kind="stable")
    ]


def _token_parts(result: TokenResult, explanation: Explanation, images: dict[str, bytes]) -> dict[str, Any]:
    """The top tokens per class (tables, charts) and the first ``tokens.shown_texts`` texts highlighted."""
    shown = explanation.config.get("tokens", {}).get("shown_texts", 10)
    return {
        "unit": token_views.unit(result),
        "tables": token_views.token_tables(result),
        "figures": _figures(images, "tokens/"),
        "texts": [token_views.highlighted_text(result, text) for text in range(min(shown, len(result.texts)))],
        "page": TOKEN_TEXTS_PAGE,
    }


_SECTION_PARTS: dict[str, Callable[..., dict[str, Any]]] = {
    "permutation": _permutation_parts,
    "shap": _shap_parts,
    "tokens": _token_parts,
}

TOKEN_TEXTS_PAGE = "tokens/texts.html"  # every explained text highlighted, beside the report


def render_token_texts(result: TokenResult, version: str) -> str:
    """The standalone page of the top tokens and every explained text with its tokens highlighted."""
    column = f" of column {result.column}" if result.column else ""
    return _render(
        "token_texts.html",
        title=f"Token attributions: {len(result.texts)} texts{column}",
        header=[],
        errors={},
        warnings=[],
        version=version,
        result=result,
        unit=token_views.unit(result),
        tables=token_views.token_tables(result),
        texts=[token_views.highlighted_text(result, text) for text in range(len(result.texts))],
    )


def _image_comparison(explanation: Explanation) -> list[dict[str, Any]] | None:
    """One row per image attribution method (its result and seconds), when more than one ran."""
    results = explanation.image_results
    if len(results) < 2:
        return None
    return [{"result": result, "seconds": explanation.timings.get(result.method)} for result in results]


def _image_section(result: ImageAttributionResult, images: dict[str, bytes]) -> dict[str, Any]:
    wrong = None if result.labels is None else result.misclassified
    folder = result.method
    return {
        "result": result,
        "template": _method_template(result.method, "image.html"),
        "misclassified": None if wrong is None else int(wrong.sum()),
        "misclassified_shown": None if wrong is None else int(wrong[result.shown].sum()),
        "figures": _figures(images, f"{folder}/misclassified", f"{folder}/mean_heatmaps", f"{folder}/class_"),
    }


def _method_template(method: str, fallback: str) -> str:
    """The template of a method's section: ``methods/<method>.html``, else ``methods/<fallback>``."""
    return _environment().select_template([f"methods/{method}.html", f"methods/{fallback}"]).name


def _render(template: str, **context: Any) -> str:
    return _environment().get_template(template).render(**context)


@functools.lru_cache(maxsize=1)
def _environment() -> jinja2.Environment:
    """The templates, loaded once per process, with autoescape on and undefined names an error."""
    environment = jinja2.Environment(
        loader=jinja2.PackageLoader(__package__, "templates"),
        auto_reload=False,  # package files: no stat of each template on every render
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    environment.filters["percent"] = "{:.0%}".format
    environment.filters["number"] = format_fixed  # value|number(decimals[, sign]): never a signed zero
    return environment

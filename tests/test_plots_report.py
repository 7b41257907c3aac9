"""Plots and the HTML report: labelled, ordered, self-contained, escaped."""

from __future__ import annotations

from html.parser import HTMLParser
from pathlib import Path
from xml.etree import ElementTree

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_diabetes, load_wine
from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor

from mlflow_explain.engines.comparison import compare_runs, drift
from mlflow_explain.methods.permutation import permutation_importance
from mlflow_explain.methods.shap import shap_values
from mlflow_explain.models import detect_task
from mlflow_explain.output import plots
from mlflow_explain.output import report as report_module
from mlflow_explain.output.report import render_comparison, render_report
from mlflow_explain.results import Explanation, Finding, GradcamResult, RunImportances, Task

SVG = "{http://www.w3.org/2000/svg}"


def _svg(chart) -> ElementTree.Element:
    """The rendered chart parsed as XML (so a malformed document fails the test)."""
    return ElementTree.fromstring(plots.render(chart))


def _texts(root: ElementTree.Element, css_class: str) -> list[str]:
    return [node.text for node in root.iter(f"{SVG}text") if node.get("class") == css_class]


def _count(root: ElementTree.Element, tag: str, css_class: str) -> int:
    return sum(node.get("class") == css_class for node in root.iter(f"{SVG}{tag}"))


def _explanation(model, X, y, **shap_options):
    y = np.asarray(y)
    task = detect_task(model, y)
    names = [str(c) for c in X.columns]
    return Explanation(
        task=task,
        feature_names=names,
        n_rows=len(X),
        config={},
        model_type=type(model).__name__,
        results={
            "permutation": permutation_importance(model, X, y, n_repeats=3),
            "shap": shap_values(model, X, task, feature_names=names, max_rows=150, **shap_options),
        },
        versions={"mlflow_explain": "test"},
    )


@pytest.fixture(scope="module")
def regression():
    X, y = load_diabetes(return_X_y=True, as_frame=True)
    return _explanation(RandomForestRegressor(n_estimators=20, random_state=0).fit(X, y), X, y)


@pytest.fixture(scope="module")
def multiclass():
    X, y = load_wine(return_X_y=True, as_frame=True)
    return _explanation(RandomForestClassifier(n_estimators=20, random_state=0).fit(X, y), X, y, local_rows=2)


def _tick_pixels(root: ElementTree.Element, css_class: str) -> dict[str, float]:
    axis = "x" if css_class == "tick-x" else "y"
    return {node.text: float(node.get(axis)) for node in root.iter(f"{SVG}text") if node.get("class") == css_class}


def test_permutation_bar_is_ordered_labelled_and_shows_the_spread(regression):
    root = _svg(plots.permutation_bar(regression.permutation, "r2"))
    mean = regression.permutation.mean("r2")
    names = regression.permutation.feature_names
    rows = _tick_pixels(root, "tick-y")
    assert min(rows, key=rows.get) == names[int(np.argmax(mean))], "most important feature on top"
    assert max(rows, key=rows.get) == names[int(np.argmin(mean))]
    assert "decrease in r2" in _texts(root, "xlabel")[0]
    assert _count(root, "rect", "bar") == 10 and _count(root, "path", "error") == 10, "one bar and error bar each"
    bars = {
        node.find(f"{SVG}title").text.split(":")[0]: float(node.get("width"))
        for node in root.iter(f"{SVG}rect")
        if node.get("class") == "bar"
    }
    top, second = np.argsort(-np.abs(mean))[:2]
    assert bars[names[top]] > bars[names[second]], "bar lengths follow the importances"


def test_figures_for_regression_and_multiclass(regression, multiclass):
    figures = plots.explanation_figures(regression, dependence_top_k=3)
    assert {"permutation_importance.svg", "shap_bar.svg", "shap_beeswarm.svg"} <= set(figures)
    assert sum(key.startswith("dependence/") for key in figures) == 3
    assert sum(key.startswith("local/waterfall_row") for key in figures) == 3
    for figure in figures.values():
        root = _svg(figure)
        assert _texts(root, "xlabel") or _texts(root, "ylabel"), "every chart names its axes"
    beeswarm = _svg(figures["shap_beeswarm.svg"])
    dots = sum(node.get("d").count("h0") for node in beeswarm.iter(f"{SVG}path") if node.get("class") == "points")
    assert dots == regression.shap.n_explained * len(regression.feature_names), "one dot per row and feature"
    multi = plots.explanation_figures(multiclass, dependence_top_k=2)
    assert {"shap_beeswarm.0.svg", "shap_beeswarm.1.svg", "shap_beeswarm.2.svg"} <= set(multi)
    bar = _svg(multi["shap_bar.svg"])
    assert "log-odds" not in _texts(bar, "xlabel")[0] and "probability" in _texts(bar, "xlabel")[0]
    assert _texts(bar, "legend") == ["0", "1", "2"], "stacked by class, with a legend"
    widths: dict[str, float] = {}
    for node in bar.iter(f"{SVG}rect"):
        if node.get("class") == "bar":
            feature = node.find(f"{SVG}title").text.split(",")[0]
            widths[feature] = widths.get(feature, 0.0) + float(node.get("width"))
    metric = multiclass.shap.mean_abs().mean(axis=1)  # what shap_mean_abs/<feature> logs
    top, last = multiclass.feature_names[int(np.argmax(metric))], multiclass.feature_names[int(np.argmin(metric))]
    assert widths[top] / widths[last] == pytest.approx(metric.max() / metric.min(), rel=0.05), "bar length = metric"
    for figure in multi.values():
        _svg(figure)


def test_waterfall_runs_from_the_base_value_to_the_output(regression):
    result = regression.shap
    root = _svg(plots.waterfall(result, 0, 0, max_display=5))
    labels = _texts(root, "tick-y")  # bottom row first
    assert len(labels) == 5 and labels[0] == f"{len(result.feature_names) - 4} other features"
    strongest = result.feature_names[int(np.argmax(np.abs(result.values[0, :, 0])))]
    assert labels[-1].startswith(f"{strongest} = "), "the largest contribution on top"
    contributions = [float(text) for text in _texts(root, "annotation")]
    rounding = 5e-3 * sum(abs(c) for c in contributions)  # the labels show 3 significant digits
    assert sum(contributions) == pytest.approx(result.values[0, :, 0].sum(), abs=rounding)
    output = result.base_values[0, 0] + result.values[0, :, 0].sum()
    assert f"f(x) = {output:.3g}" in _texts(root, "xlabel")[0]


def test_dependence_and_waterfall_take_strings_and_missing_values():
    rng = np.random.RandomState(0)
    X = pd.DataFrame({"city": rng.choice(["paris", "lyon", None], 200), "size": rng.randn(200)})
    codes = X["city"].map({"paris": 1.0, "lyon": -1.0}).fillna(0.0)
    from sklearn.compose import make_column_transformer
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder

    model = make_pipeline(
        make_column_transformer((OneHotEncoder(), ["city"]), remainder="passthrough"),
        RandomForestRegressor(n_estimators=10, random_state=0),
    ).fit(X, codes + X["size"])
    task = detect_task(model, np.asarray(codes))
    result = shap_values(model, X, task, feature_names=["city", "size"])
    root = _svg(plots.dependence(result, "city", 0))
    assert {"paris", "lyon", "missing"} <= set(_texts(root, "tick-x"))
    assert _texts(root, "ylabel")[0].startswith("SHAP value of city")
    missing_row = int(np.flatnonzero(X["city"].isna().to_numpy()[result.row_positions])[0])
    assert any(
        label.startswith("city = missing") for label in _texts(_svg(plots.waterfall(result, missing_row, 0)), "tick-y")
    )
    _svg(plots.shap_beeswarm(result, 0))


def test_report_embeds_everything_and_escapes_names():
    rng = np.random.RandomState(1)
    hostile = "<script>alert(1)</script>"
    X = pd.DataFrame(rng.randn(200, 3), columns=[hostile, "plain", "$dollar$"])
    y = X[hostile] * 2 + X["plain"]
    explanation = _explanation(RandomForestRegressor(n_estimators=10, random_state=0).fit(X, y), X, y)
    images = {path: plots.render(fig) for path, fig in plots.explanation_figures(explanation, 2).items()}
    html = render_report(explanation, images)
    assert (
        hostile not in html.replace("srcdoc", "")[: html.find("<iframe")]
        and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    )
    assert html.count("data:image/svg+xml;base64,") == len(images)
    assert "Weight" in html and "± " in html
    assert "tree explainer" in html
    for attribute in ('src="http', "src='http", 'href="http', "href='http"):
        assert attribute not in html.split("<iframe")[0]


def test_report_shows_errors(regression):
    failed = Explanation(
        task=regression.task,
        feature_names=regression.feature_names,
        n_rows=10,
        config={},
        results={"permutation": regression.permutation},
        errors={"shap": "ValueError: <boom>"},
    )
    html = render_report(failed, {})
    assert "status-partial" in html and "shap failed" in html and "&lt;boom&gt;" in html


def _hostile(where: str) -> str:
    """Markup that would run a script, close an attribute or a tag, or decode an entity, were it not escaped."""
    return f"<img src=x onerror=alert('{where}')>\"'&amp;</script><script>alert(\"{where}\")</script>"


class _Page(HTMLParser):
    """The tags, attributes and visible text of a page (attribute values and text unescaped, as a browser does)."""

    def __init__(self, html: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data):
        self.text.append(data)


def _assert_shown_as_text_only(html: str, hostile: list[str]) -> _Page:
    page = _Page(html)
    assert {tag for tag, _ in page.tags} <= _REPORT_TAGS, "no tag of the data became markup"
    assert not [(tag, name) for tag, attrs in page.tags for name in attrs if name.startswith("on")]
    assert all(not attrs.get("src", "data:").startswith("http") for _, attrs in page.tags)
    shown = "".join(page.text)
    missing = [value for value in hostile if value not in shown]
    assert not missing, f"shown as text: {missing}"
    return page


_REPORT_TAGS = {"html", "head", "meta", "title", "style", "body", "h1", "h2", "h3", "table", "tr", "th", "td"} | {
    "p",
    "b",
    "span",
    "div",
    "img",
    "iframe",
    "footer",
}


def _gradcam_result(class_names: list[str], target_layer: str) -> GradcamResult:
    """A small Grad-CAM result built by hand (the report only reads it): 4 images, 2 classes, 1 misclassified."""
    rng = np.random.RandomState(0)
    maps = rng.rand(4, 3, 3)
    return GradcamResult(
        target_layer=target_layer,
        class_names=class_names,
        positions=np.arange(4),
        probabilities=np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4], [0.3, 0.7]]),
        labels=np.array([0, 1, 1, 1]),
        heatmaps_predicted=maps,
        heatmaps_true=maps,
        mean_heatmaps=maps[:2],
        class_counts=np.array([1, 3]),
        shown=np.array([0, 2]),
        shown_images=rng.rand(2, 1, 3, 3),
        shown_heatmaps_predicted=maps[:2],
        shown_heatmaps_true=maps[:2],
        deletion_drop=0.4,
        random_drop=0.1,
        deletion_fraction=0.2,
        deletion_fill="blur",
        device="cpu",
        n_images=4,
    )


def test_every_user_controlled_string_is_escaped_in_the_report(regression):
    """Feature, class, step, package and run names, messages, layer names: all shown as text, none as markup."""
    features = [_hostile(f"feature {i}") for i in range(3)]
    rng = np.random.RandomState(2)
    X = pd.DataFrame(rng.randn(150, 3), columns=features)
    y = X[features[0]] * 2 + X[features[1]]
    explanation = _explanation(RandomForestRegressor(n_estimators=10, random_state=0).fit(X, y), X, y)
    hostile = {
        key: _hostile(key) for key in ("model", "error", "step", "warning", "finding", "run", "run id", "timing")
    }
    hostile |= {key: _hostile(key) for key in ("package", "version", "class 0", "class 1", "layer")}
    explanation.model_type = hostile["model"]
    explanation.errors = {hostile["step"]: hostile["error"]}
    explanation.warnings = [hostile["warning"]]
    explanation.diagnostics = [Finding("dominant_feature", "warning", (features[0],), 0.9, hostile["finding"])]
    explanation.timings = {hostile["timing"]: 0.5}
    explanation.versions = {hostile["package"]: hostile["version"]}
    table = explanation.importances
    baseline = RunImportances(
        hostile["run id"], hostile["run"], "experiment", 0, table[::-1].assign(rank=table["rank"])
    )
    explanation.drift = drift(baseline, table.assign(importance=table["importance"][::-1].to_numpy()), 2, 0.9)
    images = {path: plots.render(fig) for path, fig in plots.explanation_figures(explanation, 2).items()}
    html = render_report(explanation, images)
    page = _assert_shown_as_text_only(
        html, features + [value for key, value in hostile.items() if "class" not in key and key != "layer"]
    )
    assert {attrs["alt"] for tag, attrs in page.tags if tag == "img"} == set(images), "figures named by their path"
    assert any(path.startswith("local/force_plot_row") for path in images), "the force plot is one of the figures"
    assert not [tag for tag, _ in page.tags if tag in ("iframe", "script")], "nothing in the page runs"

    classes = [hostile["class 0"], hostile["class 1"]]
    images_only = Explanation(
        task=Task("binary", tuple(classes)),
        feature_names=[],
        n_rows=4,
        config={},
        model_type=hostile["model"],
        results={"gradcam": _gradcam_result(classes, hostile["layer"])},
    )
    page = _assert_shown_as_text_only(render_report(images_only, {}), [*classes, hostile["layer"], hostile["model"]])
    shown = " ".join("".join(page.text).split())
    assert "1 of them are misclassified, 1 of those shown" in shown and "pixels are blurred" in shown


def test_every_user_controlled_string_is_escaped_in_the_comparison(regression):
    names = {key: _hostile(key) for key in ("run a", "run b", "experiment", "note")}
    table = regression.importances
    runs = [
        RunImportances("a" * 32, names["run a"], names["experiment"], 0, table),
        RunImportances(
            "b" * 32, names["run b"], names["experiment"], 1, table.assign(importance=table["importance"] ** 2)
        ),
    ]
    comparison = compare_runs(runs, top_k=3, notes=[names["note"]])
    images = {name: plots.render(figure) for name, figure in plots.comparison_figures(comparison).items()}
    page = _assert_shown_as_text_only(render_comparison(comparison, images), list(names.values()))
    assert len([tag for tag, _ in page.tags if tag == "img"]) == len(images) == 4
    shown = "".join(page.text)
    assert f"{runs[0].label}{runs[1].label}permutation" in shown, "the stability table names both runs, as text"


def test_both_reports_share_the_base_page(regression):
    """Head and style, the title, the header table, the problems and the footer come from one template."""
    comparison = compare_runs([RunImportances("a" * 32, "a", "e", 0, regression.importances)], notes=["only one"])
    failed = Explanation(regression.task, regression.feature_names, 10, {}, warnings=["only one"], errors={"x": "y"})
    pages = {"report": render_report(failed, {}), "comparison": render_comparison(comparison, {})}
    heads = {
        name: html.split("<title>")[0] + html.split("</title>")[1].split("<h1>")[0] for name, html in pages.items()
    }
    assert heads["report"] == heads["comparison"] and "<style>" in heads["report"], "the same head and style"
    for html in pages.values():
        assert html.rstrip().endswith("</footer>\n</body>\n</html>") and '<footer class="note">mlflow_explain ' in html
        assert '<p class="warning">only one</p>' in html, "problems listed the same way"
        assert html.index("</h1>") < html.index("<table>") < html.index('<p class="warning">'), "header, problems"
    assert '<p class="error"><b>x failed:</b> y</p>' in pages["report"]
    environment = report_module._environment()
    for name in ("report.html", "comparison.html"):
        source = environment.loader.get_source(environment, name)[0]
        assert '{% extends "base.html" %}' in source
    assert environment.autoescape is True


def test_templates_mark_nothing_safe():
    """Autoescape is only as good as its exceptions: the templates have none."""
    folder = Path(report_module.__file__).with_name("templates")
    sources = {path.relative_to(folder).as_posix(): path.read_text() for path in folder.rglob("*") if path.is_file()}
    assert {"base.html", "report.html", "comparison.html", "methods/tabular.html", "methods/image.html"} <= set(sources)
    for name, source in sources.items():
        for loophole in ("|safe", "| safe", "autoescape false", "Markup", "|e(", "escape(false"):
            assert loophole not in source, f"{name} holds {loophole}"


def test_a_script_closing_feature_name_is_text_in_the_force_plot():
    """A "</script>" in a feature name is a name in the force plot: escaped text, the SVG whole, no element added."""
    rng = np.random.RandomState(3)
    name = "</script><img src=x onerror=alert(1)>"
    X = pd.DataFrame(rng.randn(120, 2), columns=[name, "b"])
    y = X[name] - X["b"]
    model = RandomForestRegressor(n_estimators=5, random_state=0).fit(X, y)
    result = shap_values(model, X, detect_task(model, y.to_numpy()), feature_names=[name, "b"], max_rows=20)
    root = _svg(plots.force_plot(result, 0, 0))
    assert {node.tag.removeprefix(SVG) for node in root.iter()} <= {
        "svg",
        "rect",
        "text",
        "tspan",
        "line",
        "path",
        "g",
        "title",
    }
    labels = [" ".join(node.itertext()) for node in root.iter(f"{SVG}text") if node.get("class") == "feature"]
    assert any(label.startswith(name) for label in labels), "shown as the name it is"
    assert name not in plots.render(plots.force_plot(result, 0, 0)).decode(), "and written escaped"

"""The MLflow UI, in headless Chromium, shows what an explained run logged (screenshots in test-artifacts/)."""

from __future__ import annotations

from pathlib import Path

import mlflow
import pytest
from mlflow.tracking import MlflowClient

from mlflow_explain.output import token_views

from .browser import SCREENSHOTS, check_figures, css, open_report, open_run_page, wait

pytestmark = [pytest.mark.integration, pytest.mark.browser]


def test_artifacts_are_listed_and_the_report_renders_in_the_viewer(browser, mlflow_server, explained_run):
    run_id, experiment_id = explained_run
    top_level = {item.path.split("/")[-1] for item in MlflowClient(mlflow_server.url).list_artifacts(run_id, "explain")}
    assert {"report.html", "summary.json", "shap_bar.svg", "dependence", "local"} <= top_level

    open_report(browser, mlflow_server.url, experiment_id, run_id)
    report_text = browser.find_element("tag name", "body").text
    browser.switch_to.default_content()
    browser.save_screenshot(str(SCREENSHOTS / "ui_report.png"))

    for name in top_level:
        css(browser, f'[data-testid="artifact-tree-node"][artifact-name="{name}"]')
    assert "Permutation importance" in report_text and "worst perimeter" in report_text
    assert "Status\nok" in report_text or "Status ok" in report_text


def test_an_svg_plot_renders_in_the_viewer(browser, mlflow_server, explained_run):
    run_id, experiment_id = explained_run
    open_run_page(browser, mlflow_server.url, experiment_id, run_id, "/artifacts/explain/shap_bar.svg")
    image = css(browser, 'img[alt="explain/shap_bar.svg"]', visible=False)  # shown through an image preview
    wait(browser, lambda d: d.execute_script("return arguments[0].complete && arguments[0].naturalWidth", image))
    width, height = browser.execute_script("return [arguments[0].naturalWidth, arguments[0].naturalHeight]", image)
    shown = [
        img
        for img in browser.find_elements("css selector", "img")
        if img.is_displayed() and img.get_attribute("src") == image.get_attribute("src") and img.size["width"] > 100
    ]
    browser.save_screenshot(str(SCREENSHOTS / "ui_shap_bar.png"))
    assert width > 300 and height > 200, "the plot decoded as an image of a plot's size"
    assert shown, "and it is on screen"


def test_permutation_metrics_appear_in_the_run_overview(browser, mlflow_server, explained_run):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    run_id, experiment_id = explained_run
    metrics = MlflowClient(mlflow_server.url).get_run(run_id).data.metrics
    open_run_page(browser, mlflow_server.url, experiment_id, run_id)
    wait(browser, lambda d: f"Metrics ({len(metrics)})" in d.find_element("tag name", "body").text)
    search = css(browser, 'input[placeholder="Search metrics"]')
    for key in ("permutation_importance/worst perimeter", "permutation_importance_std/mean radius"):
        search.send_keys(Keys.CONTROL, "a")  # clear() does not reach React's state
        search.send_keys(Keys.BACKSPACE, key)
        link = wait(
            browser,
            lambda d, key=key: [
                e for e in d.find_elements(By.XPATH, f'//a[normalize-space()="{key}"]') if e.is_displayed()
            ],
        )
        assert link
    browser.save_screenshot(str(SCREENSHOTS / "ui_metrics.png"))
    search.send_keys(Keys.CONTROL, "a")
    search.send_keys(Keys.BACKSPACE, "permutation_importance/")
    per_feature = [key for key in metrics if "permutation_importance/" in key]
    assert len(per_feature) == 30, "one per breast-cancer feature"
    wait(browser, lambda d: f"Metrics ({len(per_feature)})" in d.find_element("tag name", "body").text)


def _not_run(driver) -> None:
    """The hostile names' scripts did not run in the current document."""
    assert driver.execute_script("return document.body.getAttribute('data-pwned')") is None
    assert driver.title != "pwned"


def test_a_script_feature_name_is_shown_as_text_and_never_runs(browser, mlflow_server, hostile_run, tmp_path):
    run_id, names, _ = hostile_run
    script_name = next(name for name in names if name.startswith("<script>"))
    client = MlflowClient(mlflow_server.url)
    experiment_id = client.get_run(run_id).info.experiment_id

    open_report(browser, mlflow_server.url, experiment_id, run_id)
    assert script_name in browser.find_element("tag name", "body").text, "the name is shown, as text"
    _not_run(browser)
    assert not browser.find_elements("tag name", "iframe"), "every figure is an image: nothing of its own runs"
    browser.switch_to.default_content()
    browser.save_screenshot(str(SCREENSHOTS / "ui_hostile_report.png"))

    report = Path(client.download_artifacts(run_id, "explain/report.html", str(tmp_path)))
    browser.get(report.as_uri())  # opened directly, outside the viewer's sandbox
    wait(browser, lambda d: "mlflow_explain report" in d.find_element("tag name", "h1").text)
    assert script_name in browser.find_element("tag name", "body").text
    _not_run(browser)


def test_categorical_plots_keep_every_text_inside_the_image(browser, tmp_path):
    """Issue 16 item 6: a beeswarm with categorical features in a legend, a dependence plot of one, no clipped text."""
    from mlflow_explain.output import plots

    from .test_plots_honest import explain_categorical

    figures = plots.explanation_figures(explain_categorical(), dependence_top_k=3)
    assert {"shap_beeswarm.svg", "dependence/size.svg", "dependence/year.svg"} <= set(figures)
    shots = {"shap_beeswarm.svg": "beeswarm_categorical.png", "dependence/size.svg": "dependence_categorical.png"}
    check_figures(browser, figures, tmp_path, shots | {"dependence/year.svg": "dependence_year.png"})


def test_comparison_heatmap_keeps_every_text_inside_the_image(browser, tmp_path):
    """Issue 16 item 9: the heatmap of a forest (probability) and a boosted model (log-odds), shares of each run."""
    from mlflow_explain.output import plots

    from .test_plots_honest import comparison_of_two_output_spaces

    figures = plots.comparison_figures(comparison_of_two_output_spaces())
    check_figures(browser, figures, tmp_path, {"importance_heatmap.shap.svg": "comparison_heatmap.png"})


_TOKEN_COLOURS = """
return [...document.querySelectorAll('.token-text')].slice(0, arguments[0]).map(text =>
  [...text.querySelectorAll('span.token')].map(span => [span.textContent, getComputedStyle(span).backgroundColor]));
"""


def test_token_views_show_the_deciding_words_in_the_report_and_their_page(browser, tracking_uri, tmp_path):
    """Issue 22: the top tokens (table, chart) and texts with their words highlighted, in the report and its page."""
    import pandas as pd
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    import mlflow_explain

    from .helpers import NEGATIVE_WORDS, POSITIVE_WORDS, review_texts

    texts, labels = review_texts(260)
    model = make_pipeline(TfidfVectorizer(), LogisticRegression()).fit(texts[:200], labels[:200])
    explanation = mlflow_explain.explain(
        model, pd.Series(texts[200:], name="review"), labels[200:], config={"permutation": {"n_repeats": 2}}
    )
    run_id = mlflow.last_active_run().info.run_id
    client = MlflowClient()
    check_figures(
        browser,
        {"tokens/top_tokens.svg": token_views.top_tokens_bar(explanation.tokens, 1)},
        tmp_path,
        {"tokens/top_tokens.svg": "tokens_top_tokens.png"},
    )
    for page, shot in (("report.html", "tokens_report.png"), ("tokens/texts.html", "tokens_texts_page.png")):
        browser.get(Path(client.download_artifacts(run_id, f"explain/{page}")).as_uri())
        heading = css(browser, "h2:last-of-type" if page == "report.html" else "h2")
        shown = browser.execute_script(_TOKEN_COLOURS, 10)
        assert len(shown) == 10
        deciding = {
            (word, colour) for text in shown for word, colour in text if word in POSITIVE_WORDS + NEGATIVE_WORDS
        }
        assert deciding and all(colour.startswith("rgba(255, 0, 81") for _, colour in deciding), (
            "each text is shown for its predicted class, which its deciding word pushes towards: red"
        )
        texts_heading = browser.find_element("xpath", "//*[self::h2 or self::h3][. = 'Texts']")
        browser.execute_script("arguments[0].scrollIntoView()", texts_heading if page == "report.html" else heading)
        browser.save_screenshot(str(SCREENSHOTS / shot))
        assert texts_heading.is_displayed()


def test_torch_text_token_views_highlight_the_deciding_words(browser, tracking_uri):
    """Issue 22: a PyTorch text classifier's tokens (layer Integrated Gradients) in the same views."""
    pytest.importorskip("captum")
    import mlflow_explain

    from .helpers import NEGATIVE_WORDS, POSITIVE_WORDS
    from .text_models import CLASS_NAMES, three_way_reviews, trained_review_classifier, word_ids

    model, vocabulary = trained_review_classifier()
    texts, _ = three_way_reviews(40, seed=7)
    with mlflow.start_run() as run:
        mlflow_explain.explain_text(model, texts, word_ids(vocabulary), vocabulary, class_names=CLASS_NAMES)
    client = MlflowClient()
    for page, shot in (("report.html", "torch_text_report.png"), ("tokens/texts.html", "torch_text_texts_page.png")):
        browser.get(Path(client.download_artifacts(run.info.run_id, f"explain/{page}")).as_uri())
        css(browser, "h2")
        shown = browser.execute_script(_TOKEN_COLOURS, 10)
        assert [[word for word, _ in text] for text in shown] == [text.split() for text in texts[:10]]
        words = POSITIVE_WORDS + NEGATIVE_WORDS
        deciding = {(word, colour) for text in shown for word, colour in text if word in words}
        assert deciding and all(colour.startswith("rgba(255, 0, 81") for _, colour in deciding), (
            "a negative or positive review is shown for its predicted class, which its deciding word pushes towards"
        )
        texts_heading = browser.find_element("xpath", "//*[self::h2 or self::h3][. = 'Texts']")
        browser.execute_script("arguments[0].scrollIntoView()", texts_heading)
        browser.save_screenshot(str(SCREENSHOTS / shot))


def test_a_vit_gradcam_figure_in_the_report(browser, tracking_uri, tmp_path):
    """Issue 22 item 2: a trained ViT's Grad-CAM section (the layer, why, the patch grid) and its figures, on screen."""
    pytest.importorskip("captum")
    import mlflow

    import mlflow_explain
    from tests.gradcam_models import square_images, trained_square_vit

    model = trained_square_vit(seed=15)  # a seed whose ViT localizes every class (tests/test_vit_gradcam.py)
    images, labels, _ = square_images(24, seed=1)
    with mlflow.start_run() as run:
        explanation = mlflow_explain.explain_images(
            model, images, labels, class_names=["red", "green", "blue"], config={"gradcam": {"max_images": 6}}
        )
    assert explanation.status == "ok"
    report = Path(MlflowClient().download_artifacts(run.info.run_id, "explain/report.html", str(tmp_path)))
    browser.get(report.as_uri())
    wait(browser, lambda d: "mlflow_explain report" in d.find_element("tag name", "h1").text)
    heading = next(h for h in browser.find_elements("tag name", "h2") if h.text == "Grad-CAM")
    browser.execute_script("arguments[0].scrollIntoView()", heading)
    text = browser.find_element("tag name", "body").text
    assert "The layer: the last transformer block's first norm (it feeds the last attention" in text
    assert "Its output was read as 16 patch tokens reshaped to a 4 x 4 grid (the class token dropped)." in text
    figures = [img for img in browser.find_elements("css selector", "img") if "gradcam" in img.get_attribute("alt")]
    assert figures, "the Grad-CAM grids are in the report"
    for figure in figures:
        width = browser.execute_script("return arguments[0].complete && arguments[0].naturalWidth", figure)
        assert width > 100, f"{figure.get_attribute('alt')} decoded as an image"
    browser.save_screenshot(str(SCREENSHOTS / "vit_gradcam_report.png"))
    grid = next(figure for figure in figures if "class_" in figure.get_attribute("alt"))
    browser.execute_script("arguments[0].scrollIntoView()", grid)
    grid.screenshot(str(SCREENSHOTS / "vit_gradcam_grid.png"))

"""Token attributions of scikit-learn text models: exact for linear models, masking otherwise, and explain() of texts.

The texts are generated (``helpers.review_texts``): one word of three decides the label, so those words
must top every token view, and a linear model's values must be coef x feature value in log-odds.
"""

from __future__ import annotations

import json
import logging

import mlflow
import numpy as np
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import RandomForestClassifier
from sklearn.feature_extraction.text import CountVectorizer, HashingVectorizer, TfidfVectorizer
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import LinearSVC

import mlflow_explain
from mlflow_explain.errors import InvalidInputError
from mlflow_explain.methods.tokens import token_attributions
from mlflow_explain.models import detect_task
from mlflow_explain.output import token_views
from mlflow_explain.text import frame_model, texts_frame

from .helpers import NEGATIVE_WORDS, POSITIVE_WORDS, review_texts

DECIDING = set(POSITIVE_WORDS) | set(NEGATIVE_WORDS)
FAST = {"permutation": {"n_repeats": 2}, "diagnostics": {"leakage": False}}


@pytest.fixture(scope="module")
def reviews():
    texts, labels = review_texts(260)
    return texts[:200], labels[:200], texts[200:], labels[200:]


@pytest.fixture(scope="module")
def reviews_with_numbers(reviews):
    """The reviews as a text column beside two numeric columns, one of which also moves the label."""
    train, y_train, valid, y_valid = reviews
    rng = np.random.RandomState(1)

    def frame(texts, labels):
        return pd.DataFrame(
            {"review": texts, "stars": labels * 0.5 + rng.randn(len(texts)), "noise": rng.randn(len(texts))}
        )

    return frame(train, y_train), y_train, frame(valid, y_valid), y_valid


def _attributions(pipeline, texts, labels, **options):
    """Token attributions of ``pipeline`` (fitted on texts) on ``texts``, as the engine computes them."""
    X = texts_frame(pd.Series(texts))
    model = frame_model(pipeline, "text")
    return model, X, token_attributions(model, X, detect_task(model, np.asarray(labels)), **options)


def _top(result, n):
    return set(result.token_means(absolute=True).iloc[:, -1].sort_values(ascending=False).index[:n])


def test_linear_values_are_coef_times_feature_value_and_add_up_to_the_decision_function(reviews):
    train, y_train, valid, y_valid = reviews
    pipeline = make_pipeline(TfidfVectorizer(), LogisticRegression()).fit(train, y_train)
    model, X, result = _attributions(pipeline, valid, y_valid)
    assert result.algorithm == "linear" and result.output_space == "margin" and result.column is None
    assert _top(result, len(DECIDING)) == DECIDING
    vectorizer, logistic = pipeline[0], pipeline[-1]
    features = vectorizer.transform(valid).toarray()
    for i in range(len(valid)):
        per_token = pd.Series(result.values[i][:, 1]).groupby(result.tokens[i]).sum()
        expected = {
            token: logistic.coef_[0, vectorizer.vocabulary_[token]] * features[i, vectorizer.vocabulary_[token]]
            for token in per_token.index
        }
        np.testing.assert_allclose(per_token.to_numpy(), [expected[token] for token in per_token.index], atol=1e-12)
    np.testing.assert_allclose(result.base_values[:, 1], logistic.intercept_[0])
    margins = np.array([result.output_values(i)[1] for i in range(len(valid))])
    np.testing.assert_allclose(margins, pipeline.decision_function(valid), atol=1e-12)
    np.testing.assert_allclose(result.values[0][:, 0], -result.values[0][:, 1])  # the negative class mirrors it
    assert result.max_additivity_error < 1e-12


def test_a_text_column_beside_numeric_columns(reviews_with_numbers):
    train, y_train, valid, y_valid = reviews_with_numbers
    transformer = ColumnTransformer(
        [("words", TfidfVectorizer(), "review"), ("numbers", StandardScaler(), ["stars", "noise"])]
    )
    pipeline = make_pipeline(transformer, LogisticRegression()).fit(train, y_train)
    result = token_attributions(pipeline, valid, detect_task(pipeline, y_valid))
    assert result.algorithm == "linear" and result.column == "review"
    assert _top(result, len(DECIDING)) == DECIDING
    margins = np.array([result.output_values(i)[1] for i in range(len(valid))])
    np.testing.assert_allclose(margins, pipeline.decision_function(valid), atol=1e-12)
    numbers = transformer.transform(valid)[:, transformer.output_indices_["numbers"]]
    numeric_part = np.asarray(numbers @ pipeline[-1].coef_[0, transformer.output_indices_["numbers"]]).ravel()
    np.testing.assert_allclose(result.base_values[:, 1], pipeline[-1].intercept_[0] + numeric_part, atol=1e-12)


def test_bigrams_and_stop_words_are_shared_exactly_among_their_words(reviews):
    train, y_train, valid, y_valid = reviews
    vectorizer = CountVectorizer(ngram_range=(1, 2), stop_words=["the", "and", "a"])
    pipeline = make_pipeline(vectorizer, LogisticRegression(max_iter=1000)).fit(train, y_train)
    _, _, result = _attributions(pipeline, valid, y_valid)
    assert result.algorithm == "linear" and result.max_additivity_error < 1e-10
    assert _top(result, len(DECIDING)) == DECIDING
    stop_word_values = [
        v[t, 1] for v, ts in zip(result.values, result.tokens, strict=True) for t, w in enumerate(ts) if w == "the"
    ]
    assert stop_word_values and not np.any(stop_word_values), "a stop word is no feature: it gets nothing"


def test_hashed_columns_give_each_word_coef_times_feature_value(reviews):
    train, y_train, valid, y_valid = reviews
    pipeline = make_pipeline(HashingVectorizer(n_features=2**12), LogisticRegression(max_iter=1000))
    pipeline.fit(train, y_train)
    _, _, result = _attributions(pipeline, valid, y_valid)
    assert result.algorithm == "linear" and result.max_additivity_error < 1e-10
    hasher, coef = pipeline[0], pipeline[-1].coef_[0]
    features = hasher.transform(valid).toarray()
    for i in range(5):
        per_token = pd.Series(result.values[i][:, 1]).groupby(result.tokens[i]).sum()
        columns = [hasher.transform([token]).indices[0] for token in per_token.index]
        if len(set(columns)) == len(columns):  # no two of the text's words hashed to one column
            np.testing.assert_allclose(per_token.to_numpy(), coef[columns] * features[i, columns], atol=1e-12)


def test_a_regressor_is_explained_in_its_prediction(reviews):
    train, y_train, valid, y_valid = reviews
    pipeline = make_pipeline(TfidfVectorizer(), Ridge()).fit(train, y_train * 3.0)
    _, _, result = _attributions(pipeline, valid, y_valid * 3.0)
    assert result.output_names == ["prediction"] and result.output_space == "prediction"
    np.testing.assert_allclose([result.output_values(i)[0] for i in range(len(valid))], pipeline.predict(valid))


def test_masking_puts_the_deciding_words_on_top_of_a_forest_and_adds_up_to_its_probabilities(reviews):
    train, y_train, valid, y_valid = reviews
    pipeline = make_pipeline(TfidfVectorizer(), RandomForestClassifier(n_estimators=30, random_state=0))
    pipeline.fit(train, y_train)
    model, X, result = _attributions(pipeline, valid, y_valid, random_state=3)
    assert result.algorithm == "text masking" and "not a linear model" in result.reason
    assert result.output_space == "probability"
    assert _top(result, len(DECIDING)) == DECIDING
    outputs = np.array([result.output_values(i) for i in range(len(valid))])
    np.testing.assert_allclose(outputs, pipeline.predict_proba(valid), atol=1e-12)
    again = _attributions(pipeline, valid, y_valid, random_state=3)[2]
    np.testing.assert_array_equal(np.concatenate(again.values), np.concatenate(result.values))  # seeded


def test_masking_of_a_linear_model_agrees_with_its_exact_values(reviews):
    """On a model without interactions (the margin of a linear model), sampled Shapley values are exact."""
    train, y_train, valid, y_valid = reviews
    pipeline = make_pipeline(CountVectorizer(binary=True), LinearSVC()).fit(train, y_train)
    _, _, exact = _attributions(pipeline, valid[:10], y_valid[:10])
    model = frame_model(pipeline, "text")
    masked = token_attributions(model, texts_frame(valid[:10]), detect_task(model, y_valid), algorithm="masking")
    assert masked.output_space == "margin" and masked.algorithm == "text masking"  # no predict_proba: the margin
    for i in range(10):
        np.testing.assert_allclose(masked.values[i], exact.values[i], atol=1e-9)


def test_a_multiclass_model_gets_a_view_and_importances_per_class(reviews):
    train, y_train, valid, y_valid = reviews
    topics = np.where([("box" in text) for text in train], 2, y_train)  # a third class: texts about the box
    pipeline = make_pipeline(TfidfVectorizer(), LogisticRegression()).fit(train, topics)
    valid_topics = np.where([("box" in text) for text in valid], 2, y_valid)
    model, X, result = _attributions(pipeline, valid, valid_topics)
    assert result.output_names == ["0", "1", "2"] and result.algorithm == "linear"
    logits = np.array([result.output_values(i) for i in range(len(valid))])
    np.testing.assert_allclose(logits, pipeline.decision_function(valid), atol=1e-12)
    blocks = {output: tokens for output, tokens, _, _ in result.importance_blocks(detect_task(model, valid_topics))}
    assert list(blocks) == ["all", "0", "1", "2"] and blocks["2"][0] == "box"
    empty = _attributions(pipeline, ["", valid[0]], valid_topics[:2])[2]  # an empty text: no token, its output
    assert empty.values[0].shape == (0, 3)
    np.testing.assert_allclose(empty.base_values[0], pipeline.decision_function([""])[0])
    figures = token_views.token_figures(result, None, 0)
    assert set(figures) == {f"tokens/top_tokens.{k}.svg" for k in "012"}
    assert token_views.top_tokens(result, 2)["token"].iloc[0] == "box"


def test_a_character_analyzer_is_masked_word_by_word(reviews):
    train, y_train, valid, y_valid = reviews
    pipeline = make_pipeline(TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 4)), LogisticRegression())
    _, _, result = _attributions(pipeline.fit(train, y_train), valid[:20], y_valid[:20])
    assert result.algorithm == "text masking" and "analyzer is 'char_wb', not words" in result.reason
    assert result.tokens[0] == valid[0].split()
    outputs = np.array([result.output_values(i) for i in range(20)])
    np.testing.assert_allclose(outputs, pipeline.predict_proba(valid[:20]), atol=1e-12)


def test_the_cap_on_texts_is_a_seeded_sample(reviews):
    train, y_train, valid, y_valid = reviews
    pipeline = make_pipeline(TfidfVectorizer(), LogisticRegression()).fit(train, y_train)
    _, _, result = _attributions(pipeline, valid, y_valid, max_texts=7)
    assert len(result.texts) == 7 and result.n_texts_passed == len(valid)
    assert [valid[position] for position in result.row_positions] == result.texts


def test_linear_asked_of_a_forest_is_one_sentence(reviews):
    train, y_train, valid, y_valid = reviews
    pipeline = make_pipeline(TfidfVectorizer(), RandomForestClassifier(n_estimators=5, random_state=0))
    pipeline.fit(train, y_train)
    with pytest.raises(
        InvalidInputError, match=r"tokens.algorithm is 'linear' but the final estimator .* not a linear"
    ):
        _attributions(pipeline, valid, y_valid, algorithm="linear")


def test_texts_for_a_text_pipeline_must_be_one_column():
    with pytest.raises(InvalidInputError, match="takes texts .* has 2 columns"):
        texts_frame(pd.DataFrame({"a": ["x"], "b": ["y"]}))
    assert texts_frame(["a b", "c"]).columns.tolist() == ["text"]
    assert texts_frame(pd.Series(["a"], name="review", index=[7])).index.tolist() == [7]


# explain() of texts: a Series, a list, and a text column beside others, into an MLflow run.


def _logged(run_id):
    client = MlflowClient()
    summary = json.loads(open(client.download_artifacts(run_id, "explain/summary.json")).read())
    return client.get_run(run_id).data, summary


def test_explain_takes_a_series_of_texts(tracking_uri, reviews, caplog):
    train, y_train, valid, y_valid = reviews
    pipeline = make_pipeline(TfidfVectorizer(), LogisticRegression()).fit(train, y_train)
    series = pd.Series(valid, name="review", index=np.arange(1000, 1000 + len(valid)))
    with caplog.at_level(logging.WARNING, logger="mlflow_explain"):
        explanation = mlflow_explain.explain(pipeline, series, y_valid, config=FAST | {"tokens": {"top_k": 5}})
    assert explanation.status == "ok", explanation.errors
    assert explanation.feature_names == ["review"] and explanation.shap is None
    assert sum("SHAP values were not computed" in record.message for record in caplog.records) == 1
    run_id = mlflow.last_active_run().info.run_id
    data, summary = _logged(run_id)
    token_metrics = {key for key in data.metrics if key.startswith("tokens_mean_abs/")}
    assert len(token_metrics) == 5 and {f"tokens_mean_abs/{word}" for word in ("excellent", "awful")} <= token_metrics
    assert "permutation_importance/review" in data.metrics, "the text column's permutation importance stays"
    assert summary["tokens"]["algorithm"] == "linear" and summary["shap"] is None
    assert any("SHAP values were not computed" in warning for warning in summary["warnings"])
    assert {"tokens/texts.html", "tokens/top_tokens.svg", "shap_values.parquet"} <= set(summary["files"])
    table = pd.read_parquet(MlflowClient().download_artifacts(run_id, "explain/shap_values.parquet"))
    first = table[table["row"] == 0]
    assert first["token"].tolist() == explanation.tokens.tokens[0] and first["index"].iloc[0] == 1000
    assert first["token_column"].isna().all()
    np.testing.assert_allclose(
        first["token_value:1"].sum() + first["token_base_value:1"].iloc[0], pipeline.decision_function(valid[:1])[0]
    )
    page = open(MlflowClient().download_artifacts(run_id, "explain/tokens/texts.html"), encoding="utf-8").read()
    assert page.count('class="token-text"') == len(valid)
    report = open(MlflowClient().download_artifacts(run_id, "explain/report.html"), encoding="utf-8").read()
    assert "Token attributions" in report and report.count('class="token-text"') == 10


def test_explain_takes_a_list_of_texts_for_a_forest(tracking_uri, reviews):
    train, y_train, valid, y_valid = reviews
    pipeline = make_pipeline(TfidfVectorizer(), RandomForestClassifier(n_estimators=20, random_state=0))
    explanation = mlflow_explain.explain(pipeline.fit(train, y_train), list(valid), y_valid, config=FAST)
    assert explanation.status == "ok" and explanation.tokens.algorithm == "text masking"
    top = explanation.importances.query("method == 'tokens'").nsmallest(len(DECIDING), "rank")["feature"]
    assert set(top) == DECIDING


@pytest.mark.slow  # SHAP of the text column is shap's ExactExplainer: its first call in a process compiles (numba)
def test_explain_a_text_column_beside_numeric_columns_keeps_shap_and_adds_tokens(tracking_uri, reviews_with_numbers):
    train, y_train, valid, y_valid = reviews_with_numbers
    transformer = ColumnTransformer(
        [("words", TfidfVectorizer(), "review"), ("numbers", StandardScaler(), ["stars", "noise"])]
    )
    pipeline = make_pipeline(transformer, LogisticRegression()).fit(train, y_train)
    # SHAP of a text column is model-agnostic (TF-IDF outputs do not name their column): a few rows keep it short
    few_rows = {"shap": {"permutation_max_rows": 10, "background_rows": 10, "local_rows": 1}}
    explanation = mlflow_explain.explain(pipeline, valid, y_valid, config=FAST | few_rows)
    assert explanation.status == "ok", explanation.errors
    assert explanation.shap is not None and explanation.tokens.column == "review"
    run_id = mlflow.last_active_run().info.run_id
    table = pd.read_parquet(MlflowClient().download_artifacts(run_id, "explain/shap_values.parquet"))
    shap_rows, token_rows = table[table["token"].isna()], table[table["token"].notna()]
    assert len(shap_rows) == 10 and shap_rows["shap:1:review"].notna().all()
    assert (token_rows["token_column"] == "review").all() and token_rows["shap:1:review"].isna().all()


def test_a_pipeline_that_takes_texts_given_two_columns_fails_in_one_sentence(tracking_uri, reviews):
    train, y_train, valid, y_valid = reviews
    pipeline = make_pipeline(TfidfVectorizer(), LogisticRegression()).fit(train, y_train)
    frame = pd.DataFrame({"review": valid, "other": valid})
    with pytest.raises(InvalidInputError, match=r"takes texts .* pass the texts as a Series"):
        mlflow_explain.explain(pipeline, frame, y_valid, config=FAST)


def test_autolog_explains_a_text_pipeline_on_its_validation_texts(tracking_uri, reviews):
    train, y_train, valid, y_valid = reviews
    mlflow_explain.autolog(validation_data=(pd.Series(valid), y_valid), config=FAST)
    try:
        with mlflow.start_run() as run:
            make_pipeline(TfidfVectorizer(), LogisticRegression()).fit(train, y_train)
    finally:
        mlflow_explain.autolog(disable=True)
    data, summary = _logged(run.info.run_id)
    assert data.tags["mlflow_explain.status"] == "ok"
    assert summary["tokens"]["algorithm"] == "linear" and summary["tokens"]["n_texts"] == len(valid)
    assert any(key.startswith("tokens_mean_abs/") for key in data.metrics)


@pytest.fixture
def logged_text_pipeline(tracking_uri, reviews):
    """A TF-IDF + logistic regression pipeline logged with mlflow.sklearn (signature: one text column), and its
    validation texts as a frame with the label beside them."""
    train, y_train, valid, y_valid = reviews
    pipeline = make_pipeline(TfidfVectorizer(), LogisticRegression()).fit(train, y_train)
    texts = pd.DataFrame({"review": train[:5]})
    with mlflow.start_run():
        info = mlflow.sklearn.log_model(
            pipeline,
            name="model",
            serialization_format="cloudpickle",
            pip_requirements=mlflow.sklearn.get_default_pip_requirements(include_cloudpickle=True),
            signature=mlflow.models.infer_signature(texts, pipeline.predict(texts["review"])),
        )
    return info.model_uri, pd.DataFrame({"review": valid, "label": y_valid})


def test_the_evaluator_explains_a_logged_text_pipeline(logged_text_pipeline):
    model_uri, data = logged_text_pipeline
    with mlflow.start_run() as run:
        result = mlflow.models.evaluate(
            model_uri,
            data,
            targets="label",
            model_type="classifier",
            evaluators=["explain"],
            evaluator_config={"explain": FAST},
        )
    _, summary = _logged(run.info.run_id)
    assert summary["status"] == "ok" and summary["tokens"]["algorithm"] == "linear"
    assert summary["tokens"]["column"] is None and summary["feature_names"] == ["review"]
    assert {"tokens_mean_abs/excellent", "tokens_mean_abs/awful"} <= set(result.metrics)


def test_the_cli_explains_a_logged_text_pipeline_on_a_csv_with_a_text_column(logged_text_pipeline, tmp_path):
    from click.testing import CliRunner

    from mlflow_explain.triggers.cli import main

    model_uri, data = logged_text_pipeline
    data.to_csv(tmp_path / "reviews.csv", index=False)
    result = CliRunner().invoke(
        main,
        ["explain", "--model-uri", model_uri, "--data", str(tmp_path / "reviews.csv"), "--target", "label"]
        + ["--set", "permutation.n_repeats=2", "--set", "diagnostics.leakage=false"],
    )
    assert result.exit_code == 0, result.output
    assert "status ok" in result.output
    run_id = mlflow.search_runs(output_format="list")[0].info.run_id
    data_logged, summary = _logged(run_id)
    assert summary["tokens"]["n_texts"] == len(data) and "tokens_mean_abs/excellent" in data_logged.metrics


def test_a_time_budget_cuts_the_texts_and_says_so():
    from mlflow_explain.config import load_config
    from mlflow_explain.data import load_validation_data
    from mlflow_explain.engines.budget import MIN_ROWS
    from mlflow_explain.engines.tabular import TabularEngine, TabularRequest

    texts, labels = review_texts(500, seed=2)
    pipeline = make_pipeline(TfidfVectorizer(), RandomForestClassifier(n_estimators=10, random_state=0))
    pipeline.fit(texts[:200], labels[:200])
    config = load_config(
        {"permutation": {"enabled": False}, "diagnostics": {"leakage": False}, "tokens": {"budget_s": 1e-6}}
    )
    data = load_validation_data(pipeline, texts[200:], labels[200:], config=config.validation)
    model = frame_model(pipeline, data.feature_names[0])
    request = TabularRequest(model=model, config=config, data=data, task=detect_task(model, data.y))
    explanation = TabularEngine().compute(request)
    assert len(explanation.tokens.texts) == MIN_ROWS
    assert any(warning.startswith("tokens: the estimated") for warning in explanation.warnings)
    assert any("sample of 100 of the 300 validation texts (the time budget)" in w for w in explanation.warnings)


def test_drift_of_a_text_model_is_measured_on_its_tokens(tracking_uri, reviews):
    train, y_train, valid, y_valid = reviews
    for estimator in (LogisticRegression(), LogisticRegression(C=0.1)):  # drift compares within a model family
        model = make_pipeline(TfidfVectorizer(), estimator).fit(train, y_train)
        explanation = mlflow_explain.explain(model, valid, y_valid, config=FAST)
    drift = explanation.drift
    assert drift is not None and drift.method == "tokens", "one text column: no SHAP, one permuted feature"
    assert drift.ndcg > 0.8, "both models put the same deciding words on top"

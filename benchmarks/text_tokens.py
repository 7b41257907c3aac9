"""Token attributions of 200 texts: exact linear values, our word masking and shap's own Text explainer, side by side.

Generated reviews (``tests.helpers.review_texts``: one of six words decides the label), 200 for
training and ``--texts`` explained, with two models: TF-IDF + logistic regression (linear: exact values,
and masking of the same model) and TF-IDF + a 100-tree random forest (masking). Each contender runs
``--repeats`` times and reports its median seconds, how many of the six deciding words are its six
top tokens (mean |value| over the texts) and the Spearman correlation of the tokens' mean |value|
with the model's reference (the exact values of the linear model, shap's Text explainer for the forest).

shap's contender is ``shap.Explainer(f, shap.maskers.Text(r"\\W+"))`` (its Partition explainer over
words, masked words removed, default ``max_evals``) on the same output: the positive class's
probability.

    python benchmarks/text_tokens.py [--texts 200 --repeats 3]
"""

from __future__ import annotations

import argparse
import logging
import statistics
import time
from collections.abc import Callable

import numpy as np
import pandas as pd
import shap
from scipy.stats import spearmanr
from sklearn.ensemble import RandomForestClassifier
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline

from benchmarks.run import machine
from mlflow_explain.methods.tokens import token_attributions
from mlflow_explain.models import detect_task
from mlflow_explain.text import frame_model, texts_frame
from tests.helpers import NEGATIVE_WORDS, POSITIVE_WORDS, review_texts

DECIDING = set(POSITIVE_WORDS) | set(NEGATIVE_WORDS)


def ours(pipeline, texts: list[str], labels: np.ndarray, algorithm: str) -> pd.Series:
    """Mean |value| per token (positive class) of our token attributions."""
    model = frame_model(pipeline, "text")
    result = token_attributions(
        model, texts_frame(texts), detect_task(model, labels), algorithm=algorithm, max_texts=len(texts)
    )
    return result.token_means(absolute=True).iloc[:, -1]


def shap_text(pipeline, texts: list[str], labels: np.ndarray) -> pd.Series:
    """Mean |value| per token (positive class's probability) of shap's Text explainer."""
    explainer = shap.Explainer(lambda batch: pipeline.predict_proba(list(batch))[:, 1], shap.maskers.Text(r"\W+"))
    explained = explainer(texts)
    frame = pd.DataFrame(
        {
            "text": np.repeat(np.arange(len(texts)), [len(tokens) for tokens in explained.data]),
            "token": [str(token).strip().lower() for tokens in explained.data for token in tokens],
            "value": np.concatenate([np.asarray(values) for values in explained.values]),
        }
    )
    frame = frame[frame["token"] != ""]
    per_text = frame.groupby(["text", "token"])["value"].sum().abs()
    return per_text.groupby(level="token").sum() / len(texts)


def timed(run: Callable[[], pd.Series], repeats: int) -> tuple[float, pd.Series]:
    times, result = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        result = run()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--texts", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    logging.disable(logging.WARNING)
    texts, labels = review_texts(200 + args.texts, seed=5)
    train, y_train, explained, y_explained = texts[:200], labels[:200], texts[200:], labels[200:]
    linear = make_pipeline(TfidfVectorizer(), LogisticRegression()).fit(train, y_train)
    forest = make_pipeline(TfidfVectorizer(), RandomForestClassifier(n_estimators=100, random_state=0))
    forest.fit(train, y_train)
    cases = [  # the first contender of each model is the reference the others are compared with
        (
            "TF-IDF + LogisticRegression",
            "ours: linear (exact, log-odds)",
            lambda: ours(linear, explained, y_explained, "linear"),
        ),
        (
            "TF-IDF + LogisticRegression",
            "ours: text masking (probability)",
            lambda: ours(linear, explained, y_explained, "masking"),
        ),
        (
            "TF-IDF + LogisticRegression",
            "shap Text explainer (probability)",
            lambda: shap_text(linear, explained, y_explained),
        ),
        (
            "TF-IDF + RandomForest(100)",
            "shap Text explainer (probability)",
            lambda: shap_text(forest, explained, y_explained),
        ),
        (
            "TF-IDF + RandomForest(100)",
            "ours: text masking (probability)",
            lambda: ours(forest, explained, y_explained, "auto"),
        ),
    ]
    print(f"Command: python benchmarks/text_tokens.py --texts {args.texts} --repeats {args.repeats}\n")
    print(f"Machine: {machine()}\n")
    print(
        "| model | contender | median s | ms per text | deciding words in top 6 | Spearman vs the model's first row |"
    )
    print("|---|---|---:|---:|---:|---:|")
    references: dict[str, pd.Series] = {}
    for model, contender, run in cases:
        seconds, importance = timed(run, args.repeats)
        reference = references.setdefault(model, importance)
        top = set(importance.sort_values(ascending=False).index[:6])
        shared = importance.index.intersection(reference.index)
        rho = spearmanr(importance[shared], reference[shared]).statistic
        print(
            f"| {model} | {contender} | {seconds:.3f} | {1000 * seconds / len(explained):.2f} | "
            f"{len(top & DECIDING)} of 6 | {rho:.3f} |"
        )


if __name__ == "__main__":
    main()

"""Token attributions of scikit-learn text models, word by word: exact for a linear model on a vectorizer's output,
else seeded word masking (sampled Shapley values over a text's distinct words).

Linear: the value of token t in text i for output k is ``coef[k, t] * X_vec[i, t]``, in the margin
(log-odds), shared equally among the occurrences of t in the text (an n-gram's share split among its
words); the base value is the intercept (plus, beside other ColumnTransformer columns, their
contribution to the same row), so values and base add up to ``decision_function`` (``predict`` of a
linear regressor) exactly. This is ELI5's ``explain_prediction`` of a linear text model, per word.

Masking: a text's distinct words are removed and put back in seeded random orders (antithetic pairs:
each order and its reverse); a word's value is its mean change of the model output when it comes
back, shared among its occurrences. Each order telescopes from the text with every word removed
(the base value) to the text itself, so the values add up to the model output exactly, in
probabilities for a classifier with ``predict_proba``. It is shap's ``PermutationExplainer`` on
words, with masked words removed rather than replaced by a mask token, as a bag-of-words model
sees the text without them.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any, Literal

import numpy as np
import pandas as pd
import scipy.sparse
from sklearn.svm import LinearSVC, LinearSVR
from tqdm.auto import tqdm

from ..errors import InvalidInputError
from ..models import model_outputs, output_names
from ..results import Task, TokenResult
from ..text import TextInput, ngram_columns, text_input, word_tokenizer

logger = logging.getLogger(__name__)

Algorithm = Literal["auto", "linear", "masking"]
MASKING = "text masking"
LINEAR = "linear"
ADDITIVITY_TOLERANCE = 1e-6  # relative to the largest |output|: linear values that miss it are not exact
MASKED_ROWS_PER_CALL = 4096  # masked texts evaluated in one predict call, at most (whole texts at a time)


def token_attributions(
    model: Any,
    X: pd.DataFrame,
    task: Task,
    *,
    algorithm: Algorithm = "auto",
    max_texts: int = 200,
    top_k: int = 20,
    n_permutations: int = 10,
    random_state: int = 0,
) -> TokenResult:
    """Attributions of each token of each text to each model output.

    Parameters
    ----------
    model : Pipeline
        A fitted Pipeline that reads text (``text.text_input`` finds its vectorizer).
    X : DataFrame
        The rows, with the text column the model reads.
    task : Task
        The model's task; classifiers get one output per class.
    algorithm : {"auto", "linear", "masking"}, default="auto"
        ``auto``: linear when the final estimator is a linear model right on the vectorizer's output
        (with a word analyzer), else masking.
    max_texts : int, default=200
        Texts explained at most (a seeded sample beyond that, in their order).
    top_k : int, default=20
        Tokens given importances (metrics) per output.
    n_permutations : int, default=10
        Word orders sampled per text by masking (rounded up to an even number: antithetic pairs).
    random_state : int, default=0
        Seed of the sample of texts and of the word orders.

    Returns
    -------
    TokenResult
        ``row_positions`` are positions in ``X``; ``column`` is None when ``X`` is the texts themselves.

    Raises
    ------
    InvalidInputError
        When the model reads no text, or ``algorithm="linear"`` does not apply to it (the sentence says why).
    """
    source = text_input(model)
    if source is None:
        raise InvalidInputError(
            "Token attributions need a Pipeline that starts with a text vectorizer, alone or on a ColumnTransformer's "
            f"text column; {type(model).__name__} reads no text."
        )
    rng = np.random.RandomState(random_state)
    positions = np.arange(len(X))
    if len(X) > max_texts:
        positions = np.sort(rng.choice(len(X), max_texts, replace=False))
    rows = X.iloc[positions].reset_index(drop=True)
    texts = ["" if pd.isna(text) else str(text) for text in rows[source.column]]
    words = [word_tokenizer(source.vectorizer)(text) for text in texts]
    problem = _linear_problem(source)
    if algorithm == "linear" and problem is not None:
        raise InvalidInputError(f"tokens.algorithm is 'linear' but {problem}; use 'auto' or 'masking'.")
    fell_back = False
    if algorithm != "masking" and problem is None:
        values, base, space, error = _linear(source, model, rows, task, words)
        problem = _inexact(values, base, error)
        fell_back = problem is not None  # linear values tried and not exact: said at WARNING
        algorithm_name = LINEAR
        reason = (
            f"exact: {type(source.estimator).__name__} is linear in the {type(source.vectorizer).__name__}'s "
            "output, each token's value is coef x feature value (margin)"
        )
    if algorithm == "masking" or problem is not None:
        n_orders = n_permutations + n_permutations % 2
        values, base, space = _masking(model, rows, source.column, texts, words, task, n_orders, rng)
        algorithm_name, error = MASKING, None
        how = f"each text's distinct words removed and put back in {n_orders} seeded orders"
        reason = f"{how}, as asked (tokens.algorithm='masking')" if problem is None else f"{how}, as {problem}"
    logger.log(
        logging.WARNING if fell_back else logging.INFO,
        "mlflow_explain: token attributions of %d texts by %s (%s).",
        len(texts),
        algorithm_name,
        reason,
    )
    return TokenResult(
        texts=texts,
        tokens=words,
        values=values,
        base_values=base,
        output_names=output_names(task),
        output_space=space,
        algorithm=algorithm_name,
        reason=reason,
        row_positions=positions,
        column=None if source.texts_passed else source.column,
        max_additivity_error=error,
        top_k=top_k,
        n_texts_passed=len(X),
    )


def _linear_problem(source: TextInput) -> str | None:
    """Why a model's token values cannot be read off its coefficients exactly (None: they can)."""
    estimator = source.estimator
    module = type(estimator).__module__
    if not (module.startswith("sklearn.linear_model") or isinstance(estimator, (LinearSVC, LinearSVR))):
        return f"the final estimator {type(estimator).__name__} is not a linear model"
    if not hasattr(estimator, "coef_") or not hasattr(estimator, "intercept_"):
        return f"the final estimator {type(estimator).__name__} has no coef_ and intercept_"
    if not source.direct:
        return "other steps stand between the text vectorizer and the linear model"
    if source.vectorizer.analyzer != "word":
        return f"the vectorizer's analyzer is {source.vectorizer.analyzer!r}, not words"
    return None


def _linear(
    source: TextInput, model: Any, rows: pd.DataFrame, task: Task, words: list[list[str]]
) -> tuple[list[np.ndarray], np.ndarray, str, float]:
    """Exact values: (values per text, base values, output space, largest gap of values + base to the model output)."""
    features = scipy.sparse.csr_matrix(source.features.transform(rows))
    coef = np.atleast_2d(np.asarray(source.estimator.coef_, dtype=float))
    intercept = np.broadcast_to(np.asarray(source.estimator.intercept_, dtype=float), (coef.shape[0],))
    start, stop = source.columns.start, source.columns.stop
    values, base = [], np.empty((len(words), coef.shape[0]))
    for i, text_words in enumerate(words):
        row = features.getrow(i)
        contributions = dict(zip(row.indices.tolist(), (coef[:, row.indices] * row.data).T, strict=True))
        in_text = (row.indices >= start) & (row.indices < stop)
        base[i] = intercept + sum((contributions[c] for c in row.indices[~in_text]), np.zeros(coef.shape[0]))
        values.append(_shared(ngram_columns(source.vectorizer, text_words), start, contributions, len(text_words)))
    space = "margin" if task.is_classification else "prediction"
    values, base = _per_class(values, base, task)
    expected = model_outputs(model, rows, task, space)
    error = max(
        (float(np.abs(v.sum(axis=0) + b - e).max()) for v, b, e in zip(values, base, expected, strict=True)),
        default=0.0,
    )
    return values, base, space, error


def _inexact(values: list[np.ndarray], base: np.ndarray, error: float) -> str | None:
    """Why linear values are not exact (they miss the model's output by more than float noise), or None."""
    scale = max((float(np.abs(v.sum(axis=0) + b).max()) for v, b in zip(values, base, strict=True)), default=1.0)
    if error <= ADDITIVITY_TOLERANCE * max(scale, 1.0):
        return None
    return f"the linear values miss the model's output by up to {error:.3g} (not exact)"


def _shared(
    occurrences: list[tuple[int, tuple[int, ...]]], start: int, contributions: dict[int, np.ndarray], n_words: int
) -> np.ndarray:
    """Each word's share of the column contributions: a column's value split among its occurrences in the text, an
    occurrence's among its words."""
    n_outputs = len(next(iter(contributions.values()))) if contributions else 1
    counts: dict[int, int] = {}
    for column, _ in occurrences:
        counts[column] = counts.get(column, 0) + 1
    shares = np.zeros((n_words, n_outputs))
    for column, span in occurrences:
        contribution = contributions.get(column + start)
        if contribution is not None:
            shares[list(span)] += contribution / (counts[column] * len(span))
    return shares


def _per_class(values: list[np.ndarray], base: np.ndarray, task: Task) -> tuple[list[np.ndarray], np.ndarray]:
    """A binary model's one margin as two outputs, the negative class its mirror image (as ShapResult has them)."""
    if task.kind != "binary" or base.shape[1] != 1:
        return values, base
    return [np.hstack([-v, v]) for v in values], np.hstack([-base, base])


def _masking(
    model: Any,
    rows: pd.DataFrame,
    column: str,
    texts: list[str],
    words: list[list[str]],
    task: Task,
    n_permutations: int,
    rng: np.random.RandomState,
) -> tuple[list[np.ndarray], np.ndarray, str]:
    """Sampled Shapley values of each text's distinct words: (values per text, base values, output space)."""
    space = (
        "prediction" if not task.is_classification else ("probability" if hasattr(model, "predict_proba") else "margin")
    )
    plans = [_MaskPlan(text, text_words, n_permutations, rng) for text, text_words in zip(texts, words, strict=True)]
    values: list[np.ndarray] = [np.empty(0)] * len(plans)
    base = np.empty((len(plans), len(output_names(task))))
    progress = tqdm(total=len(plans), desc="token masking", unit="text", disable=len(plans) < 20, leave=False)
    for chunk in _chunks(plans):
        variants = [text for i in chunk for text in plans[i].variants]
        counts = [len(plans[i].variants) for i in chunk]
        masked = rows.iloc[np.repeat(chunk, counts)].reset_index(drop=True)
        masked[column] = variants
        outputs = np.split(model_outputs(model, masked, task, space), np.cumsum(counts)[:-1])
        for i, output in zip(chunk, outputs, strict=True):
            values[i], base[i] = plans[i].values(output)
        progress.update(len(chunk))
    progress.close()
    return values, base, space


def _chunks(plans: list[_MaskPlan]) -> Iterator[list[int]]:
    """Consecutive texts whose masked variants fit one predict call (a longer text alone)."""
    chunk: list[int] = []
    size = 0
    for i, plan in enumerate(plans):
        if chunk and size + len(plan.variants) > MASKED_ROWS_PER_CALL:
            yield chunk
            chunk, size = [], 0
        chunk.append(i)
        size += len(plan.variants)
    if chunk:
        yield chunk


class _MaskPlan:
    """One text's masked variants (first every word removed, then the text itself, then each order's steps) and how
    their outputs become the words' values."""

    def __init__(self, text: str, words: list[str], n_permutations: int, rng: np.random.RandomState):
        distinct = {word: word_id for word_id, word in enumerate(dict.fromkeys(words))}
        self.word_ids = np.array([distinct[word] for word in words], dtype=int)
        self.counts = np.bincount(self.word_ids, minlength=len(distinct))
        half = [rng.permutation(len(distinct)) for _ in range(n_permutations // 2)]
        self.orders = [order for order in half for order in (order, order[::-1])]
        self.variants = ["", text]
        for order in self.orders:
            kept = np.zeros(len(distinct), dtype=bool)
            for word_id in order[:-1]:  # the last step puts back every word: the text itself
                kept[word_id] = True
                self.variants.append(" ".join(w for w, keep in zip(words, kept[self.word_ids], strict=True) if keep))

    def values(self, outputs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(values per word occurrence (n_words, n_outputs), base value (n_outputs,)) from the variants' outputs."""
        empty, full = outputs[0], outputs[1]
        phi = np.zeros((len(self.counts), outputs.shape[1]))
        steps = max(len(self.counts) - 1, 0)
        for p, order in enumerate(self.orders if len(self.counts) else []):
            path = np.vstack([empty, outputs[2 + p * steps : 2 + (p + 1) * steps], full])
            phi[order] += np.diff(path, axis=0)
        if self.orders:
            phi /= len(self.orders)
        return phi[self.word_ids] / self.counts[self.word_ids, None], empty

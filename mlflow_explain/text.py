"""Models that read text: scikit-learn Pipelines that start with a text vectorizer, alone or on a text column of a
ColumnTransformer, and the one-column frame their texts are explained as.

A Pipeline that starts with a vectorizer takes the texts themselves (a Series or list of strings);
the engines take rows of named columns, so such texts are explained as a one-column frame
(:func:`texts_frame`) and the model as :func:`frame_model` of it: the same Pipeline behind a
:class:`TextColumn` step that hands the column's texts to the vectorizer.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.compose import ColumnTransformer
from sklearn.feature_extraction import FeatureHasher
from sklearn.feature_extraction.text import CountVectorizer, HashingVectorizer
from sklearn.pipeline import Pipeline

from .errors import InvalidInputError

VECTORIZERS = (CountVectorizer, HashingVectorizer)  # TfidfVectorizer is a CountVectorizer
VECTORIZER_NAMES = "TfidfVectorizer, CountVectorizer or HashingVectorizer"
TEXT_COLUMN = "text"  # the column name of texts passed without one (a list, an unnamed Series)


class TextColumn(TransformerMixin, BaseEstimator):
    """The texts of one column of a frame, as a list of strings: the step that lets a Pipeline that takes texts
    take a one-column frame (missing texts become empty strings)."""

    def __init__(self, column: str = TEXT_COLUMN):
        self.column = column

    def fit(self, X: Any, y: Any = None) -> TextColumn:
        return self

    def transform(self, X: Any) -> list[str]:
        texts = X[self.column] if isinstance(X, pd.DataFrame) else np.asarray(X)[:, 0]
        return ["" if pd.isna(text) else str(text) for text in texts]

    def __sklearn_is_fitted__(self) -> bool:
        return True


@dataclasses.dataclass(frozen=True)
class TextInput:
    """Where a model's texts go in.

    ``column`` is the frame column holding the texts; ``texts_passed`` says the user passed the texts
    themselves (the column is then the one :func:`texts_frame` made). ``features`` is the step whose
    output the final ``estimator`` takes (the vectorizer, or the ColumnTransformer around it) and
    ``columns`` the slice of that output the vectorizer fills; ``direct`` is True when nothing else
    stands between them (a vectorizer's columns are then the estimator's features one for one).
    """

    vectorizer: Any
    column: str
    texts_passed: bool
    features: Pipeline
    estimator: Any
    columns: slice
    direct: bool


def takes_texts(model: Any) -> bool:
    """True for a Pipeline whose first step is a text vectorizer: it takes texts, not rows of columns."""
    return isinstance(model, Pipeline) and isinstance(model.steps[0][1], VECTORIZERS)


def takes_texts_column(model: Any) -> bool:
    """True for a model made by :func:`frame_model`: its only input is one column of texts."""
    return isinstance(model, Pipeline) and isinstance(model.steps[0][1], TextColumn)


def texts_frame(X: Any) -> pd.DataFrame:
    """Texts (a Series, list, 1-D array, or a frame of one column of them) as a one-column frame.

    The column is the Series' or frame's name, else ``text``; a Series keeps its index.

    Raises
    ------
    InvalidInputError
        When ``X`` is a frame of several columns or not a sequence of texts.
    """
    if isinstance(X, pd.DataFrame):
        if X.shape[1] != 1:
            shown = ", ".join(map(str, X.columns[:10]))
            raise InvalidInputError(
                f"The model takes texts (its Pipeline starts with a {VECTORIZER_NAMES}), but X has {X.shape[1]} "
                f"columns ({shown}); pass the texts as a Series or list of strings, or a DataFrame of one text column."
            )
        return X.set_axis([str(X.columns[0])], axis=1)
    if isinstance(X, pd.Series):
        return X.to_frame(TEXT_COLUMN if X.name is None else str(X.name))
    array = np.asarray(X, dtype=object)
    if array.ndim == 2 and array.shape[1] == 1:
        array = array[:, 0]
    if array.ndim != 1 or not all(isinstance(text, str) or pd.isna(text) for text in array):
        raise InvalidInputError(
            f"The model takes texts (its Pipeline starts with a {VECTORIZER_NAMES}); pass X as a Series or list of "
            f"strings, not {type(X).__name__} of shape {array.shape}."
        )
    return pd.DataFrame({TEXT_COLUMN: array})


def frame_model(model: Pipeline, column: str) -> Pipeline:
    """``model``, which takes texts, as a Pipeline that takes the one-column frame of :func:`texts_frame`."""
    return Pipeline([("text_column", TextColumn(column)), *model.steps])


def text_input(model: Any) -> TextInput | None:
    """Where the texts of ``model`` go in: a Pipeline on a :class:`TextColumn` or a ColumnTransformer's text column,
    then a vectorizer; None for a model that reads no text."""
    if not isinstance(model, Pipeline) or len(model.steps) < 2:
        return None
    steps = [step for _, step in model.steps]
    if isinstance(steps[0], TextColumn) and isinstance(steps[1], VECTORIZERS):
        columns = slice(0, _width(steps[1]))
        return TextInput(steps[1], steps[0].column, True, model[:-1], steps[-1], columns, len(steps) == 3)
    if not isinstance(steps[0], ColumnTransformer):
        return None
    found = _text_transformer(steps[0])
    if found is None:
        return None
    name, vectorizer, column = found
    columns = steps[0].output_indices_[name]
    return TextInput(vectorizer, column, False, model[:-1], steps[-1], columns, len(steps) == 2)


def _text_transformer(transformer: ColumnTransformer) -> tuple[str, Any, str] | None:
    """The first (name, vectorizer, column) of a fitted ColumnTransformer whose transformer is a text vectorizer."""
    for name, step, columns in transformer.transformers_:
        if isinstance(step, VECTORIZERS):
            if isinstance(columns, (int, np.integer)):
                columns = transformer.feature_names_in_[columns]
            return name, step, str(columns)
    return None


def _width(vectorizer: Any) -> int | None:
    """The number of columns a fitted vectorizer outputs."""
    if isinstance(vectorizer, HashingVectorizer):
        return vectorizer.n_features
    return len(vectorizer.vocabulary_)


def word_tokenizer(vectorizer: Any) -> Callable[[str], list[str]]:
    """How a vectorizer cuts a text into words, in reading order: its preprocessor and tokenizer for a word
    analyzer (before stop words are dropped), else runs of non-space characters."""
    if vectorizer.analyzer == "word":
        preprocess, tokenize, decode = vectorizer.build_preprocessor(), vectorizer.build_tokenizer(), vectorizer.decode
        return lambda text: list(tokenize(preprocess(decode(text))))
    return re.compile(r"\S+").findall


def ngram_columns(vectorizer: Any, words: list[str]) -> list[tuple[int, tuple[int, ...]]]:
    """Each feature occurrence a word-analyzer vectorizer counts in a text cut into ``words``: (its output column,
    the positions of its words), the n-grams the vectorizer's own analyzer makes (stop words dropped first).

    An n-gram outside a vocabulary has no column and is left out.
    """
    stop_words = vectorizer.get_stop_words() or frozenset()
    kept = [position for position, word in enumerate(words) if word not in stop_words]
    min_n, max_n = vectorizer.ngram_range
    spans = [tuple(kept[start : start + n]) for n in range(min_n, max_n + 1) for start in range(len(kept) - n + 1)]
    grams = [" ".join(words[position] for position in span) for span in spans]
    if isinstance(vectorizer, HashingVectorizer):
        hasher = FeatureHasher(vectorizer.n_features, input_type="string", alternate_sign=False)
        columns = hasher.transform([[gram] for gram in grams]).indices if grams else []
        return list(zip(map(int, columns), spans, strict=True))
    vocabulary = vectorizer.vocabulary_
    return [(vocabulary[gram], span) for gram, span in zip(grams, spans, strict=True) if gram in vocabulary]

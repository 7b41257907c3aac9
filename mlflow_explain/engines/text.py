"""The text engine: token attributions of a PyTorch text classifier by layer Integrated Gradients (no MLflow).

The texts (or token ids) are encoded once, ``tokens.max_texts`` of them chosen (a seeded
sample beyond that, said in the log), and the step ``tokens`` fills ``explanation.tokens`` with a
:class:`~mlflow_explain.results.TokenResult`: the same result, figures, metrics and report section
as the tokens of a scikit-learn text pipeline.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from ..errors import InvalidInputError, MissingDependencyError
from ..results import Explanation, Task, TokenResult
from .base import ExplainRequest, new_explanation, run_steps

if TYPE_CHECKING:
    from ..methods.token_ids import EncodedTexts

logger = logging.getLogger(__name__)


@dataclasses.dataclass
class TextRequest(ExplainRequest):
    """A PyTorch text classifier, the texts or token ids to explain, and what names their tokens."""

    texts: Any
    tokenizer: Any = None
    vocabulary: Sequence[str] | Mapping | None = None
    class_names: Sequence[str] | None = None
    embedding_layer: Any = None  # a module or its name; default torch_text.embedding_layer, else found


class TextEngine:
    """Layer Integrated Gradients of each shown token, for every output of the model, in batches on its device."""

    def compute(self, request: TextRequest) -> Explanation:
        """The texts' token attributions; bad input (texts, ids, tokenizer, embedding layer): ``InvalidInputError``."""
        _require_torch()
        from ..methods.token_ids import encode_texts

        settings, shared = request.config.torch_text, request.config.tokens
        encoded = encode_texts(
            request.texts, request.tokenizer, request.vocabulary, settings.pad_token_id, settings.max_length
        )
        positions = _chosen_texts(len(encoded.texts), shared.max_texts, shared.random_state)
        explanation = new_explanation(
            request, Task("multiclass"), [], len(positions), extra_packages=("torch", "captum", "transformers")
        )
        explanation.n_rows_passed = len(encoded.texts)
        explanation.inputs = "texts"
        if not shared.enabled:
            logger.info("tokens.enabled is false: no token attributions computed.")
            return explanation
        steps = {"tokens": lambda: _tokens(request, encoded, positions)}
        run_steps(explanation, steps, request.config.on_error, passthrough=(InvalidInputError,))
        if explanation.tokens is not None:
            names = tuple(explanation.tokens.output_names)
            kind = "regression" if len(names) == 1 else "binary" if len(names) == 2 else "multiclass"
            explanation.task = Task(kind, () if kind == "regression" else names)
        return explanation


def _tokens(request: TextRequest, encoded: EncodedTexts, positions: np.ndarray) -> TokenResult:
    from ..methods.text_integrated_gradients import token_integrated_gradients

    settings = request.config.torch_text
    result = token_integrated_gradients(
        request.model,
        encoded.take(positions),
        request.embedding_layer if request.embedding_layer is not None else settings.embedding_layer,
        request.class_names,
        n_steps=settings.n_steps,
        baseline_token_id=settings.baseline_token_id,
        batch_size=settings.batch_size,
        internal_batch_size=settings.internal_batch_size,
    )
    labels = request.texts.index.to_numpy()[positions] if isinstance(request.texts, pd.Series) else None
    return dataclasses.replace(
        result,
        row_positions=positions,
        index_labels=labels,
        top_k=request.config.tokens.top_k,
        n_texts_passed=len(encoded.texts),
    )


def _chosen_texts(n_texts: int, max_texts: int, random_state: int) -> np.ndarray:
    """All text positions, or a seeded sample of ``max_texts`` of them (sorted), said in the log."""
    if n_texts <= max_texts:
        return np.arange(n_texts)
    logger.info("Explaining a seeded sample of %d of the %d texts (tokens.max_texts).", max_texts, n_texts)
    return np.sort(np.random.RandomState(random_state).choice(n_texts, max_texts, replace=False))


def _require_torch() -> None:
    try:
        import captum  # noqa: F401
        import torch  # noqa: F401
    except ImportError as err:
        raise MissingDependencyError(
            f"Token attributions of PyTorch text models need PyTorch and Captum ({err.name} is not installed): "
            "pip install 'mlflow-explain[torch]'."
        ) from err

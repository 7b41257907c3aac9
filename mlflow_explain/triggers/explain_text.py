"""Explain a PyTorch text classifier token by token (layer Integrated Gradients) and log it into an MLflow run."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

from ..config import ConfigSource, load_config
from ..engines.text import TextEngine, TextRequest
from ..publish.flow import explain_with
from ..results import Explanation


def explain_text(
    model: Any,
    texts: Any,
    tokenizer: Any = None,
    vocabulary: Sequence[str] | Mapping | None = None,
    class_names: Sequence[str] | None = None,
    embedding_layer: Any = None,
    config: ConfigSource = None,
    run_id: str | None = None,
) -> Explanation:
    """Token attributions of a PyTorch text classifier on validation texts, logged into an MLflow run.

    Captum's ``LayerIntegratedGradients`` integrates each class's score along the path from the
    embeddings of a baseline text (every token replaced by the padding token, or
    ``torch_text.baseline_token_id``; special tokens such as ``[CLS]`` kept) to the text's own, in
    the output of the embedding layer. Each token's attribution is its share of the change of the
    class's score (the logits: output space ``margin``; ``probability`` when the model returns
    probabilities), so a text's attributions plus the baseline's output (``base_values``) add up
    to the model's output; the largest relative gap is ``max_additivity_error`` (warned over 1%:
    raise ``torch_text.n_steps``). Padding and special tokens are not shown. The run gets the
    token views of a scikit-learn text pipeline: metrics ``tokens_mean_abs[.<class>]/<token>`` for
    the ``tokens.top_k`` tokens, the top tokens per class and the texts highlighted by value
    under ``explain/tokens/``, the tokens in ``shap_values.parquet``'s long form and a section in
    ``explain/report.html``.

    Parameters
    ----------
    model : torch.nn.Module
        A text classifier on token ids: called ``model(input_ids=ids, attention_mask=mask)`` when its
        forward takes ``input_ids`` (a Hugging Face sequence classifier), ``model(ids,
        attention_mask=mask)`` when it takes ``attention_mask``, else ``model(ids)``; returning one
        score per class (a Tensor, or an output with ``logits``).
    texts : list or Series of str, 2-D int array or Tensor, list of lists of ids, or a mapping
        The texts (with ``tokenizer``), or their token ids (one row per text, padded or ragged; with
        ``vocabulary`` or ``tokenizer``), or a tokenizer's output (``input_ids``, ``attention_mask``).
    tokenizer : Hugging Face tokenizer, tokenizers.Tokenizer or callable str -> ids, default=None
        Turns texts into the ids the model reads; names the tokens of ids without ``vocabulary``.
    vocabulary : list of str or mapping, default=None
        The token of each id: a list (position = id), a mapping id -> token, or token -> id.
    class_names : sequence of str, default=None
        One name per model output (default the model's ``config.id2label``, else the indices).
    embedding_layer : str or torch.nn.Module, default=None
        The layer turning ids into vectors, or its name in ``model.named_modules()``; default
        ``torch_text.embedding_layer``, else ``get_input_embeddings()``, else the first ``nn.Embedding``.
    config : path, dict or ExplainConfig, default=None
        Merged over ``configs/default.yaml`` (section ``torch_text``).
    run_id : str, default=None
        Run to log into; default the active run, or a new one.

    Returns
    -------
    Explanation
        With ``explanation.tokens`` holding the attributions (a ``TokenResult``).

    Raises
    ------
    InvalidInputError
        On texts without a tokenizer, token ids without a vocabulary or tokenizer, no padding id,
        or a model without an embedding layer found.
    MissingDependencyError
        When PyTorch or Captum is not installed (``pip install 'mlflow-explain[torch]'``).

    Examples
    --------
    >>> with mlflow.start_run():  # doctest: +SKIP
    ...     explanation = mlflow_explain.explain_text(bert, val_texts, tokenizer=tokenizer)
    >>> explanation.tokens.token_means().sort_values("positive").tail(3)  # doctest: +SKIP
    """
    started = time.perf_counter()
    request = TextRequest(
        model=model,
        config=load_config(config),
        texts=texts,
        tokenizer=tokenizer,
        vocabulary=vocabulary,
        class_names=class_names,
        embedding_layer=embedding_layer,
    )
    return explain_with(TextEngine(), request, run_id, started)[0]

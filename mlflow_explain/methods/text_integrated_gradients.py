"""Token attributions of a PyTorch text classifier by layer Integrated Gradients on its embedding (no MLflow).

Token ids are not differentiable, so the path integral runs in the embedding layer's output
(Captum's ``LayerIntegratedGradients``): from the embeddings of a baseline text (each shown token
replaced by the baseline token, by default the padding token; special tokens and padding kept)
to those of the text. A token's attribution is its embedding's attributions summed over the
embedding dimensions, for every class's score in the model's output space: the logits (margin),
or the probabilities when the model returns them. Completeness says that a text's attributions
sum to F(text) - F(baseline); the largest gap, relative to the text's largest |F(text) -
F(baseline)|, is the result's ``max_additivity_error`` (warned over 1%: raise ``n_steps``).
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable, Sequence
from typing import Literal

import numpy as np
import torch
from captum.attr import LayerIntegratedGradients
from tqdm.auto import tqdm

from ..errors import InvalidInputError
from ..results import TokenResult
from .token_ids import EncodedTexts
from .torch_modules import evaluation_mode, module_device

logger = logging.getLogger(__name__)

ADDITIVITY_TOLERANCE = 0.01  # completeness gaps above this share of the output change are warned about
ALGORITHM = "layer integrated gradients"
OutputSpace = Literal["prediction", "probability", "margin"]
_SPACE_NAMES = {"prediction": "output", "probability": "probability", "margin": "score (logit)"}


def find_embedding_layer(
    model: torch.nn.Module, name: str | torch.nn.Module | None = None
) -> tuple[torch.nn.Module, str]:
    """The layer turning token ids into vectors, and how it was chosen.

    Parameters
    ----------
    model : torch.nn.Module
        The text classifier.
    name : str or torch.nn.Module, default=None
        The layer, or its name in ``model.named_modules()``; default the model's
        ``get_input_embeddings()`` (Hugging Face), else its first ``nn.Embedding``.

    Returns
    -------
    (torch.nn.Module, str)
        The layer and a sentence saying which it is and why.

    Raises
    ------
    InvalidInputError
        When ``name`` names no module, or no embedding layer is found.
    """
    if isinstance(name, torch.nn.Module):
        return name, f"the embedding layer passed ({type(name).__name__})"
    modules = dict(model.named_modules())
    if name is not None:
        if name not in modules:
            raise InvalidInputError(
                f"embedding_layer {name!r} is not a module of {type(model).__name__}; its embeddings are "
                f"{[key for key, module in modules.items() if isinstance(module, torch.nn.Embedding)][:5]}."
            )
        return modules[name], f"embedding layer {name!r}, as configured"
    getter = getattr(model, "get_input_embeddings", None)
    layer = getter() if callable(getter) else None
    if isinstance(layer, torch.nn.Module):
        found = next((key for key, module in modules.items() if module is layer), type(layer).__name__)
        return layer, f"embedding layer {found!r}, the model's get_input_embeddings()"
    for key, module in modules.items():
        if isinstance(module, torch.nn.Embedding):
            return module, f"embedding layer {key!r}, the model's first nn.Embedding"
    raise InvalidInputError(
        f"Found no embedding layer in {type(model).__name__} (no nn.Embedding, no get_input_embeddings()): pass "
        "embedding_layer= naming the module that turns token ids into vectors."
    )


def token_integrated_gradients(
    model: torch.nn.Module,
    encoded: EncodedTexts,
    embedding_layer: str | torch.nn.Module | None = None,
    class_names: Sequence[str] | None = None,
    *,
    n_steps: int = 100,
    baseline_token_id: int | None = None,
    batch_size: int = 16,
    internal_batch_size: int | None = None,
) -> TokenResult:
    """Attributions of every shown token to every class's score, by layer Integrated Gradients.

    Parameters
    ----------
    model : torch.nn.Module
        A text classifier on token ids: ``model(input_ids=..., attention_mask=...)`` when its
        forward takes ``input_ids`` (Hugging Face), ``model(ids, attention_mask=mask)`` when it takes
        ``attention_mask``, else ``model(ids)``; returning scores (n, n_classes), or an object
        with ``logits``.
    encoded : EncodedTexts
        The texts as padded token ids (:func:`~mlflow_explain.methods.token_ids.encode_texts`).
    embedding_layer : str or torch.nn.Module, default=None
        As for :func:`find_embedding_layer`.
    class_names : sequence of str, default=None
        One name per output (default the model's ``config.id2label``, else the output indices).
    n_steps : int, default=100
        Points of the path integral (Gauss-Legendre); each costs a forward and backward pass.
    baseline_token_id : int, default=None
        The token every shown token becomes in the baseline text; default the padding id.
    batch_size : int, default=16
        Texts per call of Captum.
    internal_batch_size : int, default=None
        Texts x steps per forward/backward pass (default ``batch_size * n_steps``).

    Returns
    -------
    TokenResult
        The texts' shown tokens (padding and special tokens left out: their attribution is 0), their
        attributions per output, and the outputs at the baseline texts as ``base_values``;
        ``row_positions`` count the texts of ``encoded``.

    Raises
    ------
    InvalidInputError
        When no embedding layer is found or the model's output is not one score per class.
    """
    layer, layer_reason = find_embedding_layer(model, embedding_layer)
    forward = model_scores(model)
    device = module_device(model)
    baseline_id = encoded.pad_id if baseline_token_id is None else int(baseline_token_id)
    attributions, outputs, base_values = [], [], []
    starts = range(0, len(encoded.texts), batch_size)
    with evaluation_mode(model):
        integrated = LayerIntegratedGradients(forward, layer)
        for start in tqdm(starts, desc="Integrated Gradients (tokens)", unit="batch", disable=None, leave=False):
            batch = encoded.take(np.arange(start, min(start + batch_size, len(encoded.texts))))
            values, output, base = _batch(integrated, forward, batch, baseline_id, device, n_steps, internal_batch_size)
            attributions += values
            outputs.append(output)
            base_values.append(base)
    outputs, base_values = np.concatenate(outputs), np.concatenate(base_values)
    error = completeness_error(attributions, outputs, base_values)
    if error > ADDITIVITY_TOLERANCE:
        logger.warning(
            "Integrated Gradients of the tokens miss completeness by %.1f%% of the output change (over %.0f%%): "
            "raise torch_text.n_steps (now %d).",
            100 * error,
            100 * ADDITIVITY_TOLERANCE,
            n_steps,
        )
    space = _output_space(outputs)
    baseline_name = "the padding token" if baseline_token_id is None else f"token id {baseline_id}"
    reason = (
        f"a PyTorch text model: Integrated Gradients ({n_steps} steps) in the output of {layer_reason}, from a "
        f"baseline text of {baseline_name} (special tokens kept), for every output's {_SPACE_NAMES[space]}"
    )
    logger.info("Token attributions of %d texts: %s.", len(encoded.texts), reason)
    return TokenResult(
        texts=list(encoded.texts),
        tokens=[list(tokens) for tokens in encoded.tokens],
        values=attributions,
        base_values=base_values,
        output_names=_output_names(model, class_names, outputs.shape[1]),
        output_space=space,
        algorithm=ALGORITHM,
        reason=reason,
        row_positions=np.arange(len(encoded.texts)),
        column=None,
        max_additivity_error=error,
    )


def model_scores(model: torch.nn.Module) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """The model as a function of (token ids, attention mask) returning its scores (n, n_outputs)."""
    parameters = inspect.signature(model.forward).parameters
    takes_mask = "attention_mask" in parameters
    by_name = "input_ids" in parameters

    def scores(input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        mask = {"attention_mask": attention_mask} if takes_mask else {}
        output = model(input_ids=input_ids, **mask) if by_name else model(input_ids, **mask)
        output = getattr(output, "logits", output)
        if isinstance(output, (tuple, list)):
            output = output[0]
        if not isinstance(output, torch.Tensor) or output.ndim not in (1, 2):
            raise InvalidInputError(
                f"{type(model).__name__} must return one score per class (a Tensor (n, n_classes) or an output with "
                f"logits), not {getattr(output, 'shape', type(output).__name__)}."
            )
        return output[:, None] if output.ndim == 1 else output

    return scores


def _batch(
    integrated: LayerIntegratedGradients,
    forward: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    batch: EncodedTexts,
    baseline_id: int,
    device: torch.device,
    n_steps: int,
    internal_batch_size: int | None,
) -> tuple[list[np.ndarray], np.ndarray, np.ndarray]:
    """One batch's attributions of each text's shown tokens (n_tokens_i, n_outputs), outputs and baseline outputs."""
    ids = torch.from_numpy(batch.input_ids).to(device)
    mask = torch.from_numpy(batch.attention_mask).to(device)
    shown = batch.shown
    baseline = torch.where(torch.from_numpy(shown).to(device), torch.full_like(ids, baseline_id), ids)
    with torch.no_grad():
        outputs, base_outputs = forward(ids, mask), forward(baseline, mask)
    per_output = []
    for target in range(outputs.shape[1]):
        attributions = integrated.attribute(
            ids,
            baselines=baseline,
            target=target,
            additional_forward_args=(mask,),
            n_steps=n_steps,
            method="gausslegendre",
            internal_batch_size=internal_batch_size or len(ids) * n_steps,
        )
        per_output.append(attributions.detach().sum(dim=-1))  # (n, length): summed over the embedding dimensions
    stacked = torch.stack(per_output, dim=-1).cpu().numpy().astype(float)  # (n, length, n_outputs)
    values = [stacked[i][shown[i]] for i in range(len(ids))]
    return values, outputs.detach().cpu().numpy().astype(float), base_outputs.detach().cpu().numpy().astype(float)


def completeness_error(values: list[np.ndarray], outputs: np.ndarray, base_values: np.ndarray) -> float:
    """The largest gap of a text between its attributions' sum and F(text) - F(baseline), over that text's largest
    |F(text) - F(baseline)| (the worst output of the worst text)."""
    gaps = outputs - base_values
    totals = np.stack([text_values.sum(axis=0) for text_values in values])
    return float((np.abs(totals - gaps).max(axis=1) / np.maximum(np.abs(gaps).max(axis=1), 1e-6)).max())


def _output_space(outputs: np.ndarray) -> OutputSpace:
    """``probability`` for class probabilities (non-negative columns summing to 1), ``margin`` for other class
    scores (logits), ``prediction`` for a single output."""
    if outputs.shape[1] == 1:
        return "prediction"
    if (outputs >= 0).all() and np.allclose(outputs.sum(axis=1), 1.0, atol=1e-4):
        return "probability"
    return "margin"


def _output_names(model: torch.nn.Module, class_names: Sequence[str] | None, n_outputs: int) -> list[str]:
    """The class names given, else the model's ``config.id2label`` (Hugging Face), else the output indices."""
    if class_names is not None:
        names = [str(name) for name in class_names]
        if len(names) != n_outputs:
            raise InvalidInputError(
                f"class_names has {len(names)} names but the model returns {n_outputs} scores per text: pass one "
                "name per output."
            )
        return names
    labels = getattr(getattr(model, "config", None), "id2label", None)
    if isinstance(labels, dict) and len(labels) == n_outputs:
        return [str(labels[i]) for i in range(n_outputs)]
    return ["prediction"] if n_outputs == 1 else [str(i) for i in range(n_outputs)]

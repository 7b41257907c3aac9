"""DeepLIFT-SHAP of a chain of linear layers and elementwise activations in closed form (no MLflow).

For a ``torch.nn.Sequential`` of ``Linear`` layers and elementwise activations (every scikit-learn
MLP, the common PyTorch MLP), DeepLIFT's rescale rule needs no pass over the (row, background row)
pairs: the forward runs on the rows and on the background once, each activation's multipliers
(y_row - y_ref) / (x_row - x_ref) are formed for every pair by broadcasting, and the multipliers
of every output are carried back through the chain together (a product with each layer's weights).
The values are those of ``deep_shap._RescaleRule`` (the same rule, the local gradient where
x_row = x_ref), at about a third of its cost.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import torch


def chain_layers(module: torch.nn.Module, elementwise: tuple[type, ...]) -> list[torch.nn.Module] | None:
    """The layers of ``module`` when it is a Sequential of Linear layers, identities and ``elementwise`` modules.

    ``Dropout`` counts as an identity (the network is explained in eval mode); anything else gives None.
    """
    from torch import nn

    if not isinstance(module, nn.Sequential):
        return None
    identities = (nn.Identity, nn.Dropout, nn.AlphaDropout)
    layers = [layer for layer in module if not isinstance(layer, identities)]
    if all(isinstance(layer, (nn.Linear, *elementwise)) for layer in layers) and any(
        isinstance(layer, nn.Linear) for layer in layers
    ):
        return layers
    return None


def chain_attributions(
    layers: list[torch.nn.Module], x: torch.Tensor, refs: torch.Tensor, pass_bytes: int, small_step: float
) -> np.ndarray:
    """DeepLIFT-SHAP values (n_rows, n_features, n_outputs) of the chain ``layers`` over the background ``refs``.

    Rows go through in chunks whose pairs with every background row take at most about ``pass_bytes``:
    each activation's multipliers, and the gradients of every output at the widest layer (twice: a
    product and its result).
    """
    import torch
    from torch import nn

    linears = [layer for layer in layers if isinstance(layer, nn.Linear)]
    widest, n_outputs = max(layer.in_features for layer in linears), linears[-1].out_features
    widths = sum(layer.out_features for layer in linears[:-1]) * 2  # multipliers and their differences
    per_pair = (widths + 2 * n_outputs * widest + x.shape[1]) * x.element_size()
    chunk_rows = max(1, pass_bytes // (per_pair * len(refs)))
    blocks = []
    with torch.no_grad():
        for start in range(0, len(x), chunk_rows):
            blocks.append(_chunk_attributions(layers, x[start : start + chunk_rows], refs, small_step))
    return np.concatenate(blocks).astype(float)


def _chunk_attributions(
    layers: list[torch.nn.Module], x: torch.Tensor, refs: torch.Tensor, small_step: float
) -> np.ndarray:
    import torch
    from torch import nn

    steps: list[torch.Tensor] = []  # per layer: its weight (Linear) or its multipliers (n_rows, n_refs, width)
    at_rows, at_refs = x, refs
    for layer in layers:
        out_rows, out_refs = _apply(layer, at_rows), _apply(layer, at_refs)
        if isinstance(layer, nn.Linear):
            steps.append(layer.weight)
        else:
            steps.append(_multipliers(layer, at_rows, at_refs, out_rows, out_refs, small_step))
        at_rows, at_refs = out_rows, out_refs
    n_outputs = at_rows.reshape(len(at_rows), -1).shape[1]
    gradient = torch.eye(n_outputs, dtype=x.dtype, device=x.device)  # (outputs, width): d output / d activation
    for layer, step in zip(reversed(layers), reversed(steps), strict=True):
        gradient = gradient @ step if isinstance(layer, nn.Linear) else gradient * step.unsqueeze(-2)
    if gradient.dim() == 2:  # no activation: a linear network, the same gradient for every pair
        gradient = gradient.expand(len(x), len(refs), *gradient.shape)
    # (rows, refs, outputs, features) gradients times (row - background row), averaged over the background.
    values = torch.einsum("nbkf,nbf->nfk", gradient, x.unsqueeze(1) - refs.unsqueeze(0)) / len(refs)
    return values.cpu().numpy()


def _multipliers(
    layer: torch.nn.Module,
    at_rows: torch.Tensor,
    at_refs: torch.Tensor,
    out_rows: torch.Tensor,
    out_refs: torch.Tensor,
    small_step: float,
) -> torch.Tensor:
    """The rescale rule's multipliers (n_rows, n_refs, width) of an elementwise activation, for every pair."""
    import torch

    dx = at_rows.unsqueeze(1) - at_refs.unsqueeze(0)
    small = dx.abs() < small_step
    multipliers = (out_rows.unsqueeze(1) - out_refs.unsqueeze(0)).div_(dx.masked_fill_(small, 1.0))  # in place: large
    if bool(small.any()):  # the local gradient there, from the activation's own derivative at the row
        with torch.enable_grad():
            point = at_rows.detach().requires_grad_()
            local = torch.autograd.grad(_apply(layer, point).sum(), point)[0]
        multipliers = torch.where(small, local.unsqueeze(1).expand_as(multipliers), multipliers)
    return multipliers


def _apply(layer: torch.nn.Module, inputs: torch.Tensor) -> torch.Tensor:
    """``layer(inputs)``, on a copy for an in-place activation (its input is needed beside its output)."""
    return layer(inputs.clone() if getattr(layer, "inplace", False) else inputs)

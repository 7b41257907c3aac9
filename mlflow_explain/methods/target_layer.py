"""Which layer Grad-CAM reads, why, and how its output is laid out (no MLflow).

One forward pass of one image records the order in which the modules run and the shape of each
one's output. A named layer is taken as it is. Otherwise the layer is the one pytorch-grad-cam
recommends for the model's kind, whichever comes last in the forward pass:

- a vision transformer (ViT, DeiT, Swin): the norm that feeds the last attention, i.e. the first
  norm of the last block (``blocks[-1].norm1`` in timm, ``encoder_layer_<last>.ln_1`` in
  torchvision). The classifier reads the class token, which only that attention still mixes from
  the patch tokens: the layers after it give the patch tokens no gradient;
- a convolutional network: the last ``Conv2d`` that runs.

A vision transformer's patch embedding is a convolution too, but never chosen silently: when no
norm before an attention outputs patch tokens, the error says what to name instead.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Any

import torch
from torch import nn

from ..errors import InvalidInputError
from .feature_layout import MAX_PREFIX_TOKENS, FeatureLayout, read_layout

logger = logging.getLogger(__name__)

NORMS = (nn.LayerNorm, nn.RMSNorm)


@dataclasses.dataclass(frozen=True)
class TargetLayer:
    """The layer Grad-CAM reads: its name, the module, how its output is laid out, and why it was chosen."""

    name: str
    module: nn.Module
    layout: FeatureLayout
    reason: str


@dataclasses.dataclass
class _Trace:
    """What one forward pass ran: module names in the order they started, and each one's output shape."""

    order: list[str] = dataclasses.field(default_factory=list)
    shapes: dict[str, tuple[int, ...] | None] = dataclasses.field(default_factory=dict)

    def last(self, names: set[str], before: int | None = None) -> tuple[int, str] | None:
        """The position and name of the last of ``names`` to start (before position ``before``)."""
        end = len(self.order) if before is None else before
        return next(((i, self.order[i]) for i in range(end - 1, -1, -1) if self.order[i] in names), None)


def choose_target_layer(
    model: nn.Module, name: str | None, example: torch.Tensor, grid: tuple[int, int] | None = None
) -> TargetLayer:
    """The layer named ``name``, else the one recommended for the model's kind (see the module's docstring).

    Parameters
    ----------
    model : torch.nn.Module
        The classifier, in eval mode.
    name : str or None
        A layer named as in ``model.named_modules()``, or None to choose.
    example : Tensor of shape (1, C, H, W)
        One image on the model's device.
    grid : (int, int), default=None
        The patch grid of a transformer's tokens (config ``gradcam.token_grid``); default inferred.

    Returns
    -------
    TargetLayer

    Raises
    ------
    InvalidInputError
        On an unknown layer, one the forward pass never runs, one whose output is no map, or a
        model with neither a convolution nor a transformer block to read.
    """
    modules = dict(model.named_modules())
    convolutions = [key for key, module in modules.items() if isinstance(module, nn.Conv2d)]
    if name is not None and (not name or name not in modules):
        raise InvalidInputError(
            f"The model has no layer named {name!r}; its Conv2d layers are: {', '.join(convolutions) or 'none'}."
        )
    trace = _trace(model, example)
    image_size = tuple(example.shape[-2:])
    if name is not None:
        if name not in trace.shapes:
            raise InvalidInputError(
                f"The forward pass never calls layer {name!r}, so Grad-CAM cannot read it (a model saved with "
                "serialization_format='pt2' has no callable layers: log it with 'pickle')."
            )
        chosen = TargetLayer(name, modules[name], _layout(name, modules[name], trace, image_size, grid), "named")
        if _is_patch_embedding(modules[name]) and _attention_after(trace, modules, name):
            logger.warning(
                "Grad-CAM target layer %s is the patch embedding of a transformer: its map shows the input patches, "
                "not what the classifier reads; a block's first norm (the default) shows that.",
                name,
            )
    else:
        chosen = _transformer_norm(trace, modules, image_size, grid) or _last_convolution(
            trace, modules, convolutions, image_size
        )
    logger.info("Grad-CAM target layer: %s, %s; read as %s.", chosen.name, chosen.reason, chosen.layout.describe())
    return chosen


def unusable_layer_message(name: str, shape: tuple[int, ...] | None, image_size: tuple[int, int], grid: Any) -> str:
    """One sentence: the layer's real output shape, and what Grad-CAM can read instead."""
    output = "no tensor" if shape is None else f"shape {shape}"
    patch_grid = (
        f"the {grid[0]} x {grid[1]} grid of gradcam.token_grid" if grid else "a grid of the image's proportions"
    )
    return (
        f"Layer {name!r} outputs {output} for one {image_size[0]} x {image_size[1]} image, which Grad-CAM cannot "
        "read as a map: it needs a feature map (1, channels, rows, columns) or (1, rows, columns, channels), or "
        f"tokens (1, tokens, channels) whose patch tokens, after at most {MAX_PREFIX_TOKENS} class or distillation "
        f"tokens, fill {patch_grid}; name a convolution or a transformer block's norm with target_layer, or set "
        "gradcam.token_grid to the patch grid [rows, columns]."
    )


def _trace(model: nn.Module, example: torch.Tensor) -> _Trace:
    """Run ``example`` through the model, recording the modules' start order and output shapes.

    Gradients stay enabled, as for Grad-CAM itself: without them ``torch.nn.TransformerEncoderLayer``
    takes a fused path that never calls its submodules.
    """
    trace = _Trace()

    def started(key: str) -> Any:
        return lambda *_: trace.order.append(key)

    def finished(key: str) -> Any:
        def record(_module: nn.Module, _inputs: Any, output: Any) -> None:
            tensor = output[0] if isinstance(output, tuple) and output else output
            trace.shapes[key] = tuple(tensor.shape) if isinstance(tensor, torch.Tensor) else None

        return record

    hooks = []
    for key, module in model.named_modules():
        if key:
            hooks += [module.register_forward_pre_hook(started(key)), module.register_forward_hook(finished(key))]
    try:
        with torch.enable_grad():
            model(example)
    finally:
        for hook in hooks:
            hook.remove()
    return trace


def _layout(
    name: str, module: nn.Module, trace: _Trace, image_size: tuple[int, int], grid: tuple[int, int] | None
) -> FeatureLayout:
    shape = trace.shapes[name]
    layout = None if shape is None else read_layout(shape, image_size, grid, channels_last=isinstance(module, NORMS))
    if layout is None:
        raise InvalidInputError(unusable_layer_message(name, shape, image_size, grid))
    return layout


def _is_attention(module: nn.Module) -> bool:
    return isinstance(module, nn.MultiheadAttention) or "attention" in type(module).__name__.lower()


def _is_patch_embedding(module: nn.Module) -> bool:
    """A convolution cutting the image into patches: kernel equal to its stride, larger than one pixel."""
    return isinstance(module, nn.Conv2d) and module.kernel_size == module.stride and max(module.kernel_size) > 1


def _attention_after(trace: _Trace, modules: dict[str, nn.Module], name: str) -> bool:
    attention = trace.last({key for key, module in modules.items() if _is_attention(module)})
    return attention is not None and attention[0] > trace.order.index(name)


def _transformer_norm(
    trace: _Trace, modules: dict[str, nn.Module], image_size: tuple[int, int], grid: tuple[int, int] | None
) -> TargetLayer | None:
    """The norm feeding the last attention when its output is patch tokens (a vision transformer), else None."""
    attention = trace.last({key for key, module in modules.items() if _is_attention(module)})
    norms = {key for key, module in modules.items() if isinstance(module, NORMS)}
    convolution = trace.last({key for key, module in modules.items() if isinstance(module, nn.Conv2d)})
    if attention is None or (convolution is not None and convolution[0] > attention[0]):
        return None  # no attention, or convolutions after it: a convolutional network's last layers
    position, attention_name = attention
    feeding = trace.last(norms, before=position)
    if feeding is None:
        return None
    norm = feeding[1]
    shape = trace.shapes.get(norm)
    layout = None if shape is None else read_layout(shape, image_size, grid, channels_last=True)
    if layout is None:
        return None
    reason = (
        f"the last transformer block's first norm (it feeds the last attention, {attention_name}), as "
        "pytorch-grad-cam recommends for vision transformers: a classifier reading the class token gets the patch "
        "tokens' evidence through that attention, so the layers after it give them no gradient"
    )
    return TargetLayer(norm, modules[norm], layout, reason)


def _last_convolution(
    trace: _Trace, modules: dict[str, nn.Module], convolutions: list[str], image_size: tuple[int, int]
) -> TargetLayer:
    ran = trace.last(set(convolutions))
    if ran is None:
        raise InvalidInputError(
            "The model has no Conv2d layer; name the layer to explain with target_layer (config gradcam.target_layer)."
            if not convolutions
            else f"The forward pass never calls layer {convolutions[-1]!r}, so Grad-CAM cannot read it (a model saved "
            "with serialization_format='pt2' has no callable layers: log it with 'pickle')."
        )
    name = ran[1]
    if _is_patch_embedding(modules[name]) and _attention_after(trace, modules, name):
        raise InvalidInputError(
            f"The last Conv2d, {name!r}, is the patch embedding of a transformer and no norm feeding its attention "
            f"outputs patch tokens that fill a grid of the {image_size[0]} x {image_size[1]} image; name the layer "
            "to explain with target_layer (a block's first norm) or set gradcam.token_grid to the patch grid."
        )
    layout = read_layout(trace.shapes[name], image_size)
    return TargetLayer(name, modules[name], layout, "the last Conv2d the forward pass runs (a convolutional network)")

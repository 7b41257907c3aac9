"""Keras 3 models on the torch backend as the torch modules the PyTorch methods take (no MLflow).

On the torch backend a Keras model is already a ``torch.nn.Module``, but not one the PyTorch methods
can read as they are: its layers are not registered as submodules (``named_modules`` does not list
them), its Dense and Conv layers apply their activations as torch functions (which DeepLIFT's hooks
cannot see), its convolutions are channels-last by default, and it takes ``training`` as an argument
rather than from ``Module.training``. So:

- :func:`tabular_module`: a chain of Dense, Activation and Dropout layers is rebuilt as a
  ``torch.nn.Sequential`` of ``Linear`` and activation modules (:class:`KerasChain`, copies of the
  weights, used only when it reproduces the model's outputs), so DeepLIFT-SHAP is exact; any other
  model runs as itself (:class:`KerasModule`), and deep SHAP falls back to expected gradients, saying why.
- :class:`KerasImageModule`: takes images (n, C, H, W) as every image method does, hands them to the
  model in its own layout, and exposes each Keras layer under its Keras name as a view module whose
  output is the layer's feature map channels-first, for Grad-CAM's hooks.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch
from torch import nn

from ..errors import InvalidInputError

logger = logging.getLogger(__name__)

_CHAIN_TOLERANCE = 1e-5  # largest gap between a rebuilt chain's outputs and the model's (relative to their scale)
_ACTIVATIONS = {  # Keras activation name -> the torch module computing the same function (Keras defaults)
    "relu": nn.ReLU,
    "relu6": nn.ReLU6,
    "leaky_relu": lambda: nn.LeakyReLU(0.2),
    "elu": nn.ELU,
    "selu": nn.SELU,
    "gelu": nn.GELU,
    "silu": nn.SiLU,
    "swish": nn.SiLU,
    "mish": nn.Mish,
    "sigmoid": nn.Sigmoid,
    "tanh": nn.Tanh,
    "softplus": nn.Softplus,
    "softsign": nn.Softsign,
    "softmax": lambda: nn.Softmax(dim=-1),
}


class KerasModule(nn.Module):
    """A Keras model as a module whose forward runs it in inference mode (``training=False``)."""

    def __init__(self, keras_model: nn.Module):
        super().__init__()
        self.network = keras_model

    @property
    def keras_model(self) -> Any:
        """The user's Keras model."""
        return self.network

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.network(x, training=False)


class KerasChain(nn.Sequential):
    """A Keras chain of Dense and activation layers rebuilt as torch ``Linear`` and activation modules.

    The weights are copies taken when it is built; ``keras_model`` is the model it reproduces (kept
    outside the module tree, so the chain holds only its own layers).
    """

    def __init__(self, layers: list[nn.Module], keras_model: Any):
        super().__init__(*layers)
        self.__dict__["keras_model"] = keras_model


def tabular_module(keras_model: Any, rows: np.ndarray) -> tuple[nn.Module, str]:
    """The torch module that explains ``keras_model`` on rows (n, features), and a sentence saying which.

    A :class:`KerasChain` when the model is a chain of Dense, Activation and Dropout layers whose
    outputs it reproduces on ``rows``; else the model itself as a :class:`KerasModule`.
    """
    layers, why_not = _chain_layers(keras_model)
    if layers is not None:
        chain = KerasChain(layers, keras_model)
        gap = _output_gap(chain, keras_model, rows[:256])
        if gap is None:
            return chain, "its Dense and activation layers rebuilt as torch modules (exact DeepLIFT-SHAP)"
        why_not = f"the rebuilt torch layers miss its outputs by {gap:.3g}"
    logger.info("mlflow_explain: the Keras model runs as itself (%s); deep SHAP may use expected gradients.", why_not)
    return KerasModule(keras_model), f"the Keras model itself ({why_not})"


def _chain_layers(keras_model: Any) -> tuple[list[nn.Module] | None, str]:
    """The torch layers of a chain of Dense, Activation and Dropout layers, or None and the layer that is none."""
    keras = sys.modules["keras"]
    if not hasattr(keras_model, "outputs"):  # a subclassed model: the order its call applies its layers is unknown
        return None, "a subclassed model, whose layers' order is its call's"
    layers: list[nn.Module] = []
    for layer in keras_model.layers:
        if isinstance(layer, (keras.layers.InputLayer, keras.layers.Dropout)):
            continue
        if isinstance(layer, keras.layers.Dense):
            layers.append(_linear(layer))
        elif not isinstance(layer, keras.layers.Activation):
            return None, f"layer {layer.name!r} is a {type(layer).__name__}, not a Dense, Activation or Dropout layer"
        name = keras.activations.serialize(layer.activation)
        if name == "linear":
            continue
        if name not in _ACTIVATIONS:
            return None, f"layer {layer.name!r} applies activation {name!r}, which has no torch module here"
        layers.append(_ACTIVATIONS[name]())
    return (layers, "") if any(isinstance(layer, nn.Linear) for layer in layers) else (None, "it has no Dense layer")


def _linear(dense: Any) -> nn.Linear:
    """A Keras Dense layer's kernel (in, out) and bias as a torch ``Linear`` (weight (out, in))."""
    kernel = dense.kernel.value.detach().to(torch.float32)  # a Keras Variable's value: a torch tensor
    linear = nn.Linear(kernel.shape[0], kernel.shape[1], bias=dense.bias is not None)
    with torch.no_grad():
        linear.weight.copy_(kernel.T)
        if dense.bias is not None:
            linear.bias.copy_(dense.bias.value.detach())
    return linear.to(kernel.device)


def _output_gap(chain: KerasChain, keras_model: Any, rows: np.ndarray) -> float | None:
    """None when the chain gives the model's outputs on ``rows``; else the largest gap."""
    with torch.no_grad():
        x = torch.as_tensor(rows, dtype=torch.float32, device=next(chain.parameters()).device)
        rebuilt, own = chain(x), keras_model(x, training=False)
    gap = float((rebuilt - own.reshape(rebuilt.shape)).abs().max()) if own.numel() == rebuilt.numel() else np.inf
    return None if gap <= _CHAIN_TOLERANCE * max(1.0, float(own.abs().max())) else gap


class LayerView(nn.Module):
    """The output of one Keras layer, channels-first: Grad-CAM hooks this module instead of the Keras layer.

    While :class:`KerasImageModule` runs, the Keras layer's output goes through the view (an identity
    on the feature map moved to (n, C, H, W)) and back into the model in the layer's own layout.
    """

    def __init__(self, channels_last: bool):
        super().__init__()
        self.channels_last = channels_last

    def forward(self, feature_map: torch.Tensor) -> torch.Tensor:
        return feature_map

    def reroute(self, _layer: Any, _inputs: Any, output: Any) -> Any:
        """A forward hook of the Keras layer: its output, passed through this view."""
        if not isinstance(output, torch.Tensor):
            return None
        if self.channels_last and output.dim() == 4:
            return self(output.permute(0, 3, 1, 2)).permute(0, 2, 3, 1)
        return self(output)


class KerasImageModule(nn.Module):
    """A Keras image classifier taking images (n, C, H, W), its layers visible as views by their Keras names.

    Parameters
    ----------
    keras_model : keras.Model
        Takes images in its own layout (channels-last by default) and returns one score per class.
    """

    def __init__(self, keras_model: Any):
        super().__init__()
        self.network = keras_model
        self.channels_last = _data_format(keras_model) == "channels_last"
        self.views: list[tuple[Any, LayerView]] = []
        for layer in _flat_layers(keras_model):
            if layer.name.isidentifier() and not hasattr(self, layer.name):
                view = LayerView(getattr(layer, "data_format", None) != "channels_first" and self.channels_last)
                self.add_module(layer.name, view)
                self.views.append((layer, view))

    @property
    def keras_model(self) -> Any:
        """The user's Keras model."""
        return self.network

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        handles = [layer.register_forward_hook(view.reroute) for layer, view in self.views]
        try:
            return self.network(images.permute(0, 2, 3, 1) if self.channels_last else images, training=False)
        finally:
            for handle in handles:
                handle.remove()

    def layer_names(self) -> list[str]:
        """The Keras layers Grad-CAM can read, by name, in the model's order."""
        return [layer.name for layer, _ in self.views]

    def last_convolution(self) -> str:
        """The name of the model's last 2-D convolution.

        Raises
        ------
        InvalidInputError
            When the model has none.
        """
        keras = sys.modules["keras"]
        kinds = (keras.layers.Conv2D, keras.layers.DepthwiseConv2D, keras.layers.SeparableConv2D)
        convolutions = [layer.name for layer, _ in self.views if isinstance(layer, kinds)]
        if not convolutions:
            raise InvalidInputError(
                f"The Keras model has no Conv2D layer; name the layer to explain with target_layer (one of "
                f"{', '.join(self.layer_names()[:10])})."
            )
        return convolutions[-1]

    def channels_first(self, images: Any) -> np.ndarray:
        """The images as float32 (n, C, H, W), from the model's own layout (or already channels-first).

        Raises
        ------
        InvalidInputError
            When their shape fits neither layout of the model's input shape.
        """
        array = np.asarray(images.detach().cpu() if isinstance(images, torch.Tensor) else images, dtype=np.float32)
        try:
            expected = tuple(self.network.input_shape[1:])
        except AttributeError as err:  # a subclassed model never called
            raise InvalidInputError(
                f"The Keras model {type(self.network).__name__} has no input shape yet; build it (call it once on a "
                "batch, or start it with keras.Input) before explaining it."
            ) from err
        own = tuple(array.shape[1:])
        if self.channels_last and len(expected) == 3:
            height, width, channels = expected
            if own == (height, width) and channels == 1:
                return array[:, None]
            if own == expected:
                return array.transpose(0, 3, 1, 2)
            if own == (channels, height, width):
                return array
        elif own == expected:
            return array
        raise InvalidInputError(
            f"The Keras model takes images of shape {expected} (without the batch), but the images have shape "
            f"{array.shape}."
        )


def _flat_layers(model: Any) -> Iterator[Any]:
    """Every layer of the model, nested models' layers included, in the model's order."""
    for layer in model.layers:
        yield layer
        if hasattr(layer, "layers"):
            yield from _flat_layers(layer)


def _data_format(model: Any) -> str:
    """The image layout of the model's first layer that says one; else Keras's default."""
    for layer in _flat_layers(model):
        data_format = getattr(layer, "data_format", None)
        if data_format in ("channels_last", "channels_first"):
            return data_format
    return sys.modules["keras"].config.image_data_format()

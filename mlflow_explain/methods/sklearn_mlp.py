"""A fitted scikit-learn MLP as the equivalent PyTorch network, for the deep SHAP path (no MLflow).

The network holds the MLP's weights in its own precision and its hidden activation, and stops
before the output activation: it returns what a classifier's logistic or softmax is applied to
(its margin: the log-odds of the positive class for a binary classifier, the softmax logits for a
multiclass one), and a regressor's prediction.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sklearn.neural_network import MLPClassifier, MLPRegressor

if TYPE_CHECKING:
    import torch

_ACTIVATIONS = {"relu": "ReLU", "tanh": "Tanh", "logistic": "Sigmoid", "identity": "Identity"}


def mlp_problem(model: Any) -> str | None:
    """Why ``model`` is not an MLP the deep path explains (None when it is one).

    A fitted ``MLPClassifier`` with one output per class (a binary or multiclass one, not a
    multilabel one) or a fitted single-output ``MLPRegressor`` is one.
    """
    kind = type(model).__name__
    if not isinstance(model, (MLPClassifier, MLPRegressor)):
        return f"{kind} is no PyTorch module and no scikit-learn MLP"
    if not hasattr(model, "coefs_"):
        return f"{kind} is not fitted"
    if isinstance(model, MLPClassifier) and model.out_activation_ == "logistic" and model.n_outputs_ != 1:
        return f"{kind} is a multilabel classifier ({model.n_outputs_} logistic outputs)"
    if isinstance(model, MLPRegressor) and model.n_outputs_ != 1:
        return f"{kind} predicts {model.n_outputs_} targets"
    return None


def mlp_module(model: MLPClassifier | MLPRegressor) -> torch.nn.Sequential:
    """The MLP as a ``torch.nn.Sequential`` of Linear layers and its activation, without the output activation.

    Parameters
    ----------
    model : fitted MLPClassifier or MLPRegressor
        One that ``mlp_problem`` accepts.

    Returns
    -------
    torch.nn.Sequential
        In eval mode, on the CPU, in the dtype of the MLP's weights; maps (n, n_features) rows to
        (n, n_output_units): the margin of a classifier, the prediction of a regressor.
    """
    import torch
    from torch import nn

    layers: list[nn.Module] = []
    for k, (weights, intercepts) in enumerate(zip(model.coefs_, model.intercepts_, strict=True)):
        linear = nn.Linear(*weights.shape, dtype=torch.from_numpy(weights).dtype)
        with torch.no_grad():
            linear.weight.copy_(torch.from_numpy(weights.T))
            linear.bias.copy_(torch.from_numpy(intercepts))
        layers.append(linear)
        if k + 1 < len(model.coefs_):
            layers.append(getattr(nn, _ACTIVATIONS[model.activation])())
    return nn.Sequential(*layers).eval()

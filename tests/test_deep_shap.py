"""Deep SHAP: PyTorch networks and scikit-learn MLPs explained by batched DeepLIFT-SHAP, and its fallback."""

from __future__ import annotations

import copy
import json
import warnings

import mlflow
import numpy as np
import pytest
import shap
from mlflow.tracking import MlflowClient

torch = pytest.importorskip("torch")  # tests.deep_models imports it
pytestmark = pytest.mark.torch

from sklearn.exceptions import ConvergenceWarning  # noqa: E402
from sklearn.linear_model import LogisticRegression  # noqa: E402
from sklearn.neural_network import MLPClassifier, MLPRegressor  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402
from torch import nn  # noqa: E402

import mlflow_explain  # noqa: E402
from mlflow_explain.methods import deep_shap  # noqa: E402
from mlflow_explain.methods.deep_shap import deep_shap_values, module_outputs  # noqa: E402
from mlflow_explain.methods.shap import shap_values  # noqa: E402
from mlflow_explain.methods.sklearn_mlp import mlp_module  # noqa: E402
from mlflow_explain.models import detect_task, model_outputs  # noqa: E402
from tests.deep_models import TorchClassifier, TorchRegressor, fit, relu_mlp, scaled  # noqa: E402

N_ROWS, N_BACKGROUND = 25, 30


def _explain(model, X, y, **kwargs):
    options = {"max_rows": N_ROWS, "background": X.iloc[:N_BACKGROUND]} | kwargs
    return shap_values(model, X, detect_task(model, y), feature_names=list(X.columns), **options)


def _deep_explainer(module, X, result, dtype=torch.float32):
    """shap's DeepExplainer on the explained rows and background (the first rows) of ``X``: (n, features, outputs)."""
    X = np.asarray(X)
    background, rows = (torch.as_tensor(X[rows], dtype=dtype) for rows in (slice(N_BACKGROUND), result.row_positions))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        values = shap.DeepExplainer(module, background).shap_values(rows, check_additivity=False)
    return np.asarray(values).reshape(len(rows), X.shape[1], -1)


def _assert_equal_to(values, reference):
    assert np.max(np.abs(values - reference)) <= 1e-4 * np.max(np.abs(reference))


def test_torch_classifier_equals_deep_explainer_in_log_odds_and_keeps_its_mode():
    X, y = scaled("breast_cancer")
    module = fit(relu_mlp(30, 1), X.to_numpy(), y, "bce")  # left in training mode, dropout on
    model = TorchClassifier(module, "logits", [0, 1])
    result = _explain(model, X, y)
    assert all(sub.training for sub in module.modules()), "explained in eval mode, then given back in training mode"
    assert result.algorithm == "deep" and "Sequential is a PyTorch module: DeepLIFT-SHAP" in result.reason
    assert result.output_space == "margin" and result.values.shape == (N_ROWS, 30, 2) and result.n_background == 30
    np.testing.assert_array_equal(result.values[:, :, 0], -result.values[:, :, 1])
    assert result.max_additivity_error < 1e-4, "float32 network: additive to single precision"
    _assert_equal_to(result.values[:, :, 1:], _deep_explainer(module, X, result))


def test_torch_regressor_equals_deep_explainer():
    X, y = scaled("diabetes")
    module = fit(relu_mlp(10, 1), X.to_numpy(), y, "mse").eval()
    result = _explain(TorchRegressor(module), X, y)
    assert result.algorithm == "deep" and result.output_space == "prediction" and result.values.shape == (N_ROWS, 10, 1)
    assert result.max_additivity_error < 1e-5
    _assert_equal_to(result.values, _deep_explainer(module, X, result))


def test_network_ending_in_softmax_is_explained_in_probability_and_stays_additive():
    X, y = scaled("wine")
    module = fit(relu_mlp(13, 3, last=nn.Softmax(dim=1)), X.to_numpy(), y, "nll").eval()
    model = TorchClassifier(module, "probabilities", [0, 1, 2])
    result = _explain(model, X, y)
    assert result.algorithm == "deep" and result.output_space == "probability" and result.values.shape[2] == 3
    assert result.max_additivity_error < 1e-5
    _assert_equal_to(result.values, _deep_explainer(module, X, result))


class _SharedActivation(nn.Module):
    """relu_mlp's layers with one in-place ReLU module used twice (Captum's DeepLiftShap rejects a reused module)."""

    def __init__(self, source: nn.Sequential):
        super().__init__()
        self.first, self.second, self.out, self.act = source[0], source[3], source[5], nn.ReLU(inplace=True)

    def forward(self, x):
        return self.out(self.act(self.second(self.act(self.first(x)))))


def _in_place(module: nn.Sequential) -> nn.Sequential:
    copied = copy.deepcopy(module)
    for layer in copied:
        if isinstance(layer, nn.ReLU):
            layer.inplace = True
    return copied


def test_reused_or_in_place_activations_give_the_values_of_distinct_ones():
    X, y = scaled("breast_cancer")
    module = fit(relu_mlp(30, 1), X.to_numpy(), y, "bce").eval()
    # A Sequential chain is explained in closed form, the reused activation by hooks over every pair: one rule.
    expected, *results = (
        _explain(TorchClassifier(net, "logits", [0, 1]), X, y)
        for net in (module, _SharedActivation(module), _in_place(module))
    )
    for result in results:
        assert result.algorithm == "deep" and result.max_additivity_error < 1e-4
        np.testing.assert_allclose(result.values, expected.values, atol=1e-6 * np.abs(expected.values).max())  # float32


class _FunctionalReLU(nn.Module):
    """A ReLU applied as a torch function in the forward: no module for DeepLIFT's rule to hook."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.hidden, self.out = nn.Linear(30, 32), nn.Linear(32, 1)

    def forward(self, x):
        return self.out(torch.relu(self.hidden(x)))


def _layer_norm_network():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(30, 16), nn.LayerNorm(16), nn.ReLU(), nn.Linear(16, 1))


@pytest.mark.parametrize(
    ("network", "why"),
    [(_layer_norm_network, "no rule for LayerNorm (module '1')"), (_FunctionalReLU, "miss additivity")],
    ids=["layer_norm", "functional_relu"],
)
def test_network_deeplift_cannot_explain_falls_back_to_expected_gradients_and_says_why(network, why):
    X, y = scaled("breast_cancer")
    module = fit(network(), X.to_numpy(), y, "bce").eval()
    model = TorchClassifier(module, "logits", [0, 1])
    result = _explain(model, X, y)
    assert result.algorithm == "expected_gradients" and why in result.reason and "expected gradients" in result.reason
    assert result.values.shape == (N_ROWS, 30, 2) and result.output_space == "margin"
    spread = np.ptp(module_outputs(module, X.iloc[result.row_positions]))
    assert 0 < result.max_additivity_error < 0.1 * spread, "expected gradients: additive up to sampling error"
    np.testing.assert_array_equal(_explain(model, X, y).values, result.values)  # seeded points


def _layer_norm_classifier():
    X, y = scaled("breast_cancer")
    return TorchClassifier(fit(_layer_norm_network(), X.to_numpy(), y, "bce").eval(), "logits", [0, 1]), X, y


@pytest.mark.parametrize(
    ("case", "algorithm", "why"),
    [
        ("layer_norm", "expected_gradients", "no rule for LayerNorm (module '1')"),
        ("mlp_pipeline", "deep", "MLPClassifier is a scikit-learn MLP (its weights as a PyTorch network)"),
    ],
)
def test_path_and_reason_are_recorded_in_summary_json(case, algorithm, why, tracking_uri, tmp_path):
    model, X, y = _layer_norm_classifier() if case == "layer_norm" else _mlp("binary", pipeline=True)
    with mlflow.start_run() as run:
        mlflow_explain.explain(model, X.iloc[:80], y[:80], config={"permutation": {"n_repeats": 2}})
    path = MlflowClient().download_artifacts(run.info.run_id, "explain/summary.json", str(tmp_path))
    with open(path) as file:
        summary = json.load(file)["shap"]
    assert summary["algorithm"] == algorithm and why in summary["reason"], summary["reason"]
    assert (summary["max_additivity_error"] > 1e-3) == (algorithm == "expected_gradients")
    metrics = MlflowClient().get_run(run.info.run_id).data.metrics
    assert {f"shap_mean_abs/{name}" for name in X.columns} <= set(metrics), "one metric per raw column"


def _mlp(kind: str, activation: str = "relu", pipeline: bool = False):
    X, y = scaled({"binary": "breast_cancer", "multiclass": "wine", "regressor": "diabetes"}[kind])
    estimator = (MLPRegressor if kind == "regressor" else MLPClassifier)(
        hidden_layer_sizes=(16, 8), activation=activation, max_iter=60, random_state=0
    )
    model = make_pipeline(StandardScaler(), estimator) if pipeline else estimator
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return model.fit(X, y), X, y


@pytest.mark.parametrize("activation", ["relu", "tanh", "logistic", "identity"])
@pytest.mark.parametrize("kind", ["binary", "multiclass", "regressor"])
def test_mlp_as_torch_module_reproduces_the_mlp(kind, activation):
    mlp, X, y = _mlp(kind, activation)
    out = mlp_module(mlp)(torch.as_tensor(X.to_numpy())).detach().numpy()
    if kind == "regressor":
        np.testing.assert_allclose(out[:, 0], mlp.predict(X), atol=1e-6)
        return
    proba = mlp.predict_proba(X)
    margin = model_outputs(mlp, X, detect_task(mlp, y), "margin")
    if kind == "binary":
        np.testing.assert_allclose(1 / (1 + np.exp(-out[:, 0])), proba[:, 1], atol=1e-6)
        np.testing.assert_allclose(margin, np.hstack([-out, out]), atol=1e-9)
        p = proba[(proba[:, 1] > 1e-6) & (proba[:, 1] < 1 - 1e-6), 1]  # log(p / (1 - p)) is exact enough there
        np.testing.assert_allclose(out[np.isin(proba[:, 1], p), 0], np.log(p / (1 - p)), atol=1e-6)
    else:
        np.testing.assert_allclose(np.exp(out) / np.exp(out).sum(axis=1, keepdims=True), proba, atol=1e-6)
        np.testing.assert_allclose(margin, out, atol=1e-9)
        unsaturated = proba.min(axis=1) > 1e-9  # softmax logits: log-probabilities up to a constant per row
        assert np.ptp(out[unsaturated] - np.log(proba[unsaturated]), axis=1).max() < 1e-6


@pytest.mark.parametrize(("kind", "pipeline"), [("binary", True), ("multiclass", False), ("regressor", True)])
def test_mlps_take_the_deep_path_and_equal_deep_explainer_per_raw_column(kind, pipeline):
    model, X, y = _mlp(kind, pipeline=pipeline)
    task = detect_task(model, y)
    result = _explain(model, X, y)
    assert result.algorithm == "deep" and "scikit-learn MLP" in result.reason, result.reason
    assert result.output_space == ("prediction" if kind == "regressor" else "margin")
    assert result.values.shape == (N_ROWS, X.shape[1], len(task.classes) or 1)
    assert result.max_additivity_error < 1e-9, "float64 network: additive to double precision"
    assert (f"summed back to {X.shape[1]} raw columns" in result.reason) == pipeline
    mlp, rows = (model[-1], model[:-1].transform(X)) if pipeline else (model, X)
    explained = result.values[:, :, 1:] if kind == "binary" else result.values  # binary: the positive class's margin
    _assert_equal_to(explained, _deep_explainer(mlp_module(mlp), rows, result, dtype=torch.float64))


def test_deep_algorithm_on_a_model_that_is_no_network_says_why():
    X, y = scaled("breast_cancer")
    model = LogisticRegression(max_iter=200).fit(X, y)
    with pytest.raises(ValueError, match="shap.algorithm is 'deep' but LogisticRegression is no PyTorch module"):
        _explain(model, X, y, algorithm="deep")


def test_rows_in_many_small_passes_give_the_values_of_one_pass(monkeypatch):
    X, y = scaled("breast_cancer")
    module = fit(relu_mlp(30, 2), X.to_numpy(), y, "ce").eval()
    rows, background = X.to_numpy()[:7], X.to_numpy()[7:37]
    networks = (module, _SharedActivation(module))  # the closed-form chain and the hooks over every pair
    whole = [deep_shap_values(net, rows, background).values for net in networks]
    monkeypatch.setattr(deep_shap, "_PASS_BYTES", 1)  # one explained row per pass
    for net, expected in zip(networks, whole, strict=True):
        np.testing.assert_allclose(deep_shap_values(net, rows, background).values, expected, rtol=1e-6, atol=1e-6)

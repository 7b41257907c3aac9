"""Keras 3 models (torch backend): autolog after fit, beside mlflow.keras.autolog(), the evaluator, explain_images."""

from __future__ import annotations

import json
import logging
import warnings

import mlflow
import numpy as np
import pandas as pd
import pytest
import shap
from click.testing import CliRunner
from mlflow.tracking import MlflowClient

keras = pytest.importorskip("keras")
torch = pytest.importorskip("torch")
pytestmark = pytest.mark.torch

from torch import nn  # noqa: E402

import mlflow_explain  # noqa: E402
from mlflow_explain.config import ExplainConfig, TorchConfig  # noqa: E402
from mlflow_explain.engines import keras_adapter  # noqa: E402
from mlflow_explain.engines.keras_torch import KerasChain, KerasModule  # noqa: E402
from mlflow_explain.errors import InvalidInputError  # noqa: E402
from mlflow_explain.models import PredictOnlyClassifier  # noqa: E402
from mlflow_explain.triggers.autolog import autolog as autolog_module  # noqa: E402
from mlflow_explain.triggers.autolog import keras as keras_autolog  # noqa: E402
from mlflow_explain.triggers.cli import main  # noqa: E402
from tests.deep_models import scaled  # noqa: E402

N_TRAIN = 500  # breast cancer: the other 69 rows are the validation rows


@pytest.fixture(autouse=True)
def autologs_off_afterwards(monkeypatch):
    """A fresh autolog state for each test; every autolog switched off after it."""
    monkeypatch.setattr(autolog_module, "_state", autolog_module._State())
    yield
    mlflow_explain.autolog(disable=True)
    mlflow.keras.autolog(disable=True)


@pytest.fixture(scope="module")
def cancer():
    X, y = scaled("breast_cancer")
    return X.to_numpy(np.float32), y


def _binary_network() -> keras.Model:
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [
            keras.Input((30,)),
            keras.layers.Dense(8, activation="relu"),
            keras.layers.Dropout(0.2),
            keras.layers.Dense(1, activation="sigmoid"),
        ]
    )
    model.compile(keras.optimizers.Adam(0.01), "binary_crossentropy")
    return model


@pytest.fixture(scope="module")
def trained(cancer):
    X, y = cancer
    model = _binary_network()
    model.fit(X[:N_TRAIN], y[:N_TRAIN], epochs=3, verbose=0)
    return model


def _torch_copy(model: keras.Model) -> nn.Sequential:
    """The Dense-ReLU-Dense-sigmoid network with the Keras model's weights, built by hand as the reference."""
    dense = [layer for layer in model.layers if isinstance(layer, keras.layers.Dense)]
    linears = []
    for layer in dense:
        kernel, bias = (np.asarray(keras.ops.convert_to_numpy(v)) for v in (layer.kernel, layer.bias))
        linear = nn.Linear(*kernel.shape)
        linear.weight.data, linear.bias.data = torch.tensor(kernel.T), torch.tensor(bias)
        linears.append(linear)
    return nn.Sequential(linears[0], nn.ReLU(), linears[1], nn.Sigmoid()).eval()


def _shap_table(run_id: str) -> pd.DataFrame:
    return pd.read_parquet(MlflowClient().download_artifacts(run_id, "explain/shap_values.parquet"))


def _summary(run_id: str) -> dict:
    return json.loads(open(MlflowClient().download_artifacts(run_id, "explain/summary.json")).read())


@pytest.mark.slow
def test_fit_is_explained_by_autolog_with_deep_shap_equal_to_deep_explainer(tracking_uri, cancer):
    X, y = cancer
    model = _binary_network()
    mlflow_explain.autolog()
    with mlflow.start_run() as run:
        model.fit(X[:N_TRAIN], y[:N_TRAIN], epochs=3, verbose=0, validation_data=(X[N_TRAIN:], y[N_TRAIN:]))
    summary = _summary(run.info.run_id)
    assert summary["shap"]["algorithm"] == "deep" and summary["model_type"] == "Sequential"
    details = summary["model_details"]
    assert details["keras_backend"] == "torch" and details["output_kind"] == "probabilities"
    assert "sigmoid" in details["reading"] and "rebuilt as torch modules" in details["torch_module"]
    table = _shap_table(run.info.run_id)
    features = [column.removeprefix("value:") for column in table.columns if column.startswith("value:")]
    values = table[[f"shap:1:{name}" for name in features]].to_numpy()
    rows = X[N_TRAIN:][table["row"].to_numpy()]
    assert len(rows) == len(X) - N_TRAIN, "every validation row explained, against all of them as background"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        background = torch.as_tensor(X[N_TRAIN:])
        reference = shap.DeepExplainer(_torch_copy(model), background).shap_values(torch.as_tensor(rows))
    reference = np.asarray(reference).reshape(values.shape)
    assert np.max(np.abs(values - reference)) <= 1e-4 * np.max(np.abs(reference))
    predicted = model.predict(rows, verbose=0)[:, 0]
    np.testing.assert_allclose(values.sum(axis=1) + table["base_value:1"], predicted, atol=1e-4)


@pytest.mark.slow
@pytest.mark.parametrize("mlflow_first", [True, False], ids=["mlflow-keras-first", "mlflow-explain-first"])
def test_beside_mlflow_keras_autolog_in_either_order_one_run_holds_both(tracking_uri, cancer, mlflow_first):
    X, y = cancer
    if mlflow_first:
        mlflow.keras.autolog(log_datasets=False)
    mlflow_explain.autolog()
    if not mlflow_first:
        mlflow.keras.autolog(log_datasets=False)
    _binary_network().fit(X[:N_TRAIN], y[:N_TRAIN], epochs=2, verbose=0, validation_split=0.1)
    experiment_id = mlflow.get_experiment_by_name("tests").experiment_id
    (run,) = MlflowClient().search_runs([experiment_id])
    assert run.data.tags["mlflow_explain.status"] == "ok"
    assert "loss" in run.data.metrics and "shap_mean_abs/x0" in run.data.metrics, "MLflow's metrics and ours"
    (logged,) = MlflowClient().search_logged_models([experiment_id])
    assert logged.source_run_id == run.info.run_id, "MLflow's Keras model is in the same run"
    assert str(logged.status) == "READY", "MLflow logged its model before the explanation added its metrics"
    assert mlflow.pyfunc.load_model(logged.model_uri).predict(X[:2]).shape == (2, 1)
    assert _summary(run.info.run_id)["n_rows"] == N_TRAIN - int(N_TRAIN * 0.9), "the rows validation_split held out"


def test_each_keras_model_class_gets_its_fit_wrapper_and_switching_off_puts_fit_back():
    inherited = keras.Model.fit
    mlflow_explain.autolog()

    class Net(keras.Model):  # a subclassed model defined after autolog()
        pass

    assert "fit" in keras.Sequential.__dict__ and "fit" in Net.__dict__ and keras.Model.fit is not inherited
    mlflow_explain.autolog(disable=True)
    assert "fit" not in keras.Sequential.__dict__ and "fit" not in Net.__dict__ and keras.Model.fit is inherited
    assert "__init_subclass__" not in keras.Model.__dict__


def test_fit_rows_come_from_validation_data_else_validation_split(cancer, trained):
    X, y = cancer
    config = ExplainConfig()
    weights = np.ones(len(X) - N_TRAIN)
    given = keras_autolog.fit_rows(trained, (X, y), {"validation_data": (X[N_TRAIN:], y[N_TRAIN:], weights)}, config)
    assert given.X is X[N_TRAIN:] or np.array_equal(given.X, X[N_TRAIN:])
    assert given.sample_weight is weights
    held_out = keras_autolog.fit_rows(trained, (X[:100], y[:100], 32, 1, 0, None, 0.25), {}, config)
    np.testing.assert_array_equal(held_out.X, X[75:100])  # Keras validates on the last 25 of 100 rows
    np.testing.assert_array_equal(held_out.y, y[75:100])
    as_tensors = (torch.tensor(X[:5]), torch.tensor(y[:5]))
    tensors = keras_autolog.fit_rows(trained, (), {"validation_data": as_tensors}, config)
    assert isinstance(tensors.X, np.ndarray) and tensors.y.tolist() == y[:5].tolist()
    assert keras_autolog.fit_rows(trained, (X, y), {}, config) is None


def test_unreadable_validation_data_is_said_once(cancer, trained, caplog):
    X, y = cancer
    keras_autolog.install()
    batches = iter([(X[:10], y[:10])])
    with caplog.at_level(logging.WARNING, logger="mlflow_explain"):
        for _ in range(2):
            assert keras_autolog.fit_rows(trained, (X, y), {"validation_data": batches}, ExplainConfig()) is None
    said = [record.message for record in caplog.records if "validation_data is a list_iterator" in record.message]
    assert len(said) == 1


def test_a_fit_without_validation_rows_warns_once_and_makes_no_run(tracking_uri, cancer, caplog):
    X, y = cancer
    mlflow_explain.autolog()
    with caplog.at_level(logging.WARNING, logger="mlflow_explain"):
        for _ in range(2):
            _binary_network().fit(X[:100], y[:100], epochs=1, verbose=0)
    warned = [record for record in caplog.records if "no validation data" in record.message]
    assert len(warned) == 1 and warned[0].levelno == logging.WARNING
    assert "validation_split" in warned[0].message
    assert MlflowClient().search_runs([mlflow.get_experiment_by_name("tests").experiment_id]) == []


def test_a_chain_is_rebuilt_as_torch_layers_and_any_other_model_runs_as_itself(cancer, trained):
    X, y = cancer
    chain = keras_adapter.keras_estimator(trained, X[N_TRAIN:], y[N_TRAIN:], TorchConfig())
    assert isinstance(chain.torch_module, KerasChain) and list(chain.classes_) == [0, 1]
    np.testing.assert_allclose(chain.predict_proba(X[:20])[:, 1], trained.predict(X[:20], verbose=0)[:, 0], atol=1e-6)
    keras.utils.set_random_seed(0)
    normalized = keras.Sequential(
        [keras.Input((30,)), keras.layers.BatchNormalization(), keras.layers.Dense(3, activation="softmax")]
    )
    adapted = keras_adapter.keras_estimator(normalized, X[:60], y[:60] + np.arange(60) % 2, TorchConfig())
    assert isinstance(adapted.torch_module, KerasModule)
    assert "BatchNormalization" in adapted.details["torch_module"]
    np.testing.assert_allclose(adapted.predict_proba(X[:20]), normalized.predict(X[:20], verbose=0), atol=1e-6)


def test_a_subclassed_model_is_read_from_its_outputs_and_the_config(cancer):
    X, y = cancer

    class Net(keras.Model):
        def __init__(self):
            super().__init__()
            self.out = keras.layers.Dense(1, activation="sigmoid")  # made first, applied last
            self.hidden = keras.layers.Dense(4, activation="relu")

        def call(self, x):
            return self.out(self.hidden(x))

    net = Net()
    adapted = keras_adapter.keras_estimator(net, X[:40], y[:40], TorchConfig(output="probabilities"))
    assert "cannot be read (a subclassed model)" in adapted.details["reading"]
    assert isinstance(adapted.torch_module, KerasModule) and adapted.output_kind == "probabilities"
    np.testing.assert_allclose(adapted.predict_proba(X[:5])[:, 1], net.predict(X[:5], verbose=0)[:, 0], atol=1e-6)


@pytest.mark.slow
def test_on_another_backend_permutation_and_model_agnostic_shap_are_said_in_summary(
    tracking_uri, cancer, trained, monkeypatch
):
    X, y = cancer
    monkeypatch.setattr(keras_adapter, "keras_backend", lambda: "jax")
    config = {"shap": {"permutation_max_rows": 5, "background_rows": 20}, "permutation": {"n_repeats": 2}}
    explanation = mlflow_explain.explain(trained, X[N_TRAIN:], y[N_TRAIN:], config=config)
    assert explanation.status == "ok"
    assert explanation.shap.algorithm != "deep" and explanation.permutation is not None
    details = _summary(mlflow.last_active_run().info.run_id)["model_details"]
    assert details["keras_backend"] == "jax" and "model-agnostic SHAP only" in details["methods"]
    adapted = keras_adapter.keras_estimator(trained, X[:20], y[:20], TorchConfig(), backend="jax")
    assert isinstance(adapted, PredictOnlyClassifier)
    np.testing.assert_allclose(adapted.predict_proba(X[:20])[:, 1], trained.predict(X[:20], verbose=0)[:, 0])


def test_one_hot_targets_become_class_labels():
    one_hot = np.eye(3)[[2, 0, 1]]
    assert keras_adapter.labels_of(one_hot, 3).tolist() == [2, 0, 1]
    labels = np.array([1, 0])
    assert keras_adapter.labels_of(labels, 3) is labels


@pytest.mark.slow
def test_a_model_logged_with_mlflow_keras_is_explained_by_the_evaluator_and_the_cli(tracking_uri, tmp_path):
    X, y = scaled("wine")
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [keras.Input((13,)), keras.layers.Dense(16, activation="tanh"), keras.layers.Dense(3, activation="softmax")]
    )
    model.compile(keras.optimizers.Adam(0.01), "sparse_categorical_crossentropy")
    model.fit(X.to_numpy(np.float32), y, epochs=5, verbose=0)
    data = X.iloc[:60].astype(np.float32).assign(label=y[:60])
    with mlflow.start_run() as run:
        uri = mlflow.keras.log_model(model, name="model").model_uri
        result = mlflow.models.evaluate(uri, data, targets="label", model_type="classifier", evaluators=["explain"])
    assert "shap_mean_abs.0/proline" in result.metrics and "permutation_importance/proline" in result.metrics
    summary = _summary(run.info.run_id)
    assert summary["shap"]["algorithm"] == "deep" and summary["shap"]["max_additivity_error"] < 1e-4
    assert summary["model_details"]["keras_model"] == "Sequential"
    data.to_csv(tmp_path / "wine.csv", index=False)
    command = ["explain", "--model-uri", uri, "--data", str(tmp_path / "wine.csv"), "--target", "label"]
    result = CliRunner().invoke(main, command)
    assert result.exit_code == 0 and "Explained Sequential" in result.output and "status ok" in result.output


def _patch_images(n: int = 96) -> tuple[np.ndarray, np.ndarray]:
    """Channels-last images (n, 16, 16, 3) of noise; class 1 has a bright square at rows 2-6, columns 9-13."""
    rng = np.random.RandomState(0)
    images = rng.uniform(0, 0.3, size=(n, 16, 16, 3)).astype(np.float32)
    labels = rng.randint(0, 2, n)
    images[labels == 1, 2:7, 9:14] += 0.7
    return images, labels


@pytest.mark.slow
def test_a_keras_cnn_gets_grad_cam_on_its_last_conv_layer_channels_last_and_integrated_gradients(tracking_uri):
    images, labels = _patch_images()
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [
            keras.Input((16, 16, 3)),
            keras.layers.Conv2D(8, 3, padding="same", activation="relu", name="conv_a"),
            keras.layers.Conv2D(8, 3, padding="same", activation="relu", name="conv_b"),
            keras.layers.GlobalAveragePooling2D(),
            keras.layers.Dense(2, activation="softmax"),
        ]
    )
    model.compile(keras.optimizers.Adam(0.01), "sparse_categorical_crossentropy")
    model.fit(images, labels, epochs=8, verbose=0)
    config = {"gradcam": {"methods": ["gradcam", "integrated_gradients"]}, "integrated_gradients": {"n_steps": 32}}
    explanation = mlflow_explain.explain_images(model, images[:32], labels[:32], config=config)
    assert explanation.integrated_gradients.relative_convergence_delta < 0.01, "completeness on the Keras model"
    result = explanation.gradcam
    assert explanation.status == "ok" and result.target_layer == "conv_b"
    assert result.deletion_drop > result.random_drop
    right = (result.labels == 1) & (result.probabilities.argmax(axis=1) == 1)
    peak = np.unravel_index(result.heatmaps_predicted[right].mean(axis=0).argmax(), (16, 16))
    assert 2 <= peak[0] <= 6 and 9 <= peak[1] <= 13, f"the map peaks on the bright square, not at {peak}"
    with pytest.raises(InvalidInputError, match="no layer named 'conv_c'; its layers are: conv_a, conv_b"):
        mlflow_explain.explain_images(model, images[:4], target_layer="conv_c")

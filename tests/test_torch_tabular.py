"""PyTorch modules on tabular rows: explain(), the CLI and the evaluator; the task read from the outputs; batched
predictions in eval mode that leave the module's modes as they were; permutation importance equal to scikit-learn's;
and one sentence for each input that cannot work."""

from __future__ import annotations

import json
from pathlib import Path

import mlflow
import numpy as np
import pytest
from click.testing import CliRunner
from mlflow.models import infer_signature
from mlflow.tracking import MlflowClient
from sklearn.inspection import permutation_importance as sklearn_permutation_importance

import mlflow_explain
from mlflow_explain import ConfigError, InvalidInputError, load_config
from mlflow_explain.methods.permutation import permutation_importance
from mlflow_explain.triggers.cli import main

torch = pytest.importorskip("torch")
pytestmark = pytest.mark.torch

from mlflow_explain.engines.torch_adapter import TorchClassifier, TorchRegressor, torch_estimator  # noqa: E402
from tests.torch_tabular_models import (  # noqa: E402
    ModuleClassifier,
    ModuleRegressor,
    breast_cancer,
    diabetes,
    mlp,
    trained,
)

FAST = {
    "permutation": {"n_repeats": 2},
    "shap": {"max_rows": 10, "permutation_max_rows": 10, "background_rows": 10, "dependence_top_k": 1, "local_rows": 1},
    "logging": {"report": False},
}


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def cancer():
    return breast_cancer()


@pytest.fixture(scope="module")
def logits_net(cancer):
    """Breast cancer, two logits (cross-entropy); returned in train mode."""
    X_train, _, y_train, _ = cancer
    return trained(mlp(30, 2), X_train, y_train, "cross_entropy")


@pytest.fixture(scope="module")
def logit_net(cancer):
    """Breast cancer, one logit (binary cross-entropy with logits)."""
    X_train, _, y_train, _ = cancer
    return trained(mlp(30, 1, seed=1), X_train, y_train, "logit")


@pytest.fixture(scope="module")
def sugar():
    return diabetes()


@pytest.fixture(scope="module")
def regression_net(sugar):
    """Diabetes, one output (mean squared error)."""
    X_train, _, y_train, _ = sugar
    return trained(mlp(10, 1), X_train, y_train, "mse", steps=60)


def _summary(run_id: str) -> dict:
    path = mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path="explain/summary.json")
    return json.loads(Path(path).read_text())


def test_a_classifier_of_two_logits_is_explained_and_says_how_it_was_read(tracking_uri, cancer, logits_net):
    _, X_val, _, y_val = cancer
    with mlflow.start_run() as run:
        explanation = mlflow_explain.explain(logits_net, X_val, y_val, config=FAST)
    assert explanation.status == "ok", explanation.errors
    assert explanation.task.kind == "binary" and explanation.task.classes == (0, 1)
    assert explanation.model_type == "Sequential" and explanation.feature_names == list(X_val.columns)
    assert explanation.permutation.baseline_scores["accuracy"] > 0.9
    assert explanation.shap.values.shape == (10, 30, 2) and explanation.shap.output_names == ["0", "1"]
    assert explanation.shap.algorithm == "deep"  # DeepLIFT-SHAP of the module, in its logits
    assert explanation.shap.max_additivity_error < 1e-4  # values + base = the logits, to float32 precision
    summary = _summary(run.info.run_id)
    details = summary["model_details"]
    assert details["output_kind"] == "logits" and details["n_outputs"] == 2 and details["device"] == "cpu"
    assert "not summing to 1" in details["reason"] and summary["versions"]["torch"] == torch.__version__
    metrics = MlflowClient().get_run(run.info.run_id).data.metrics
    assert metrics["permutation_importance/worst concave points"] == pytest.approx(
        explanation.permutation.mean("accuracy")[list(X_val.columns).index("worst concave points")]
    )


def test_one_logit_from_an_array_or_a_tensor_is_a_binary_classifier(tracking_uri, cancer, logit_net):
    _, X_val, _, y_val = cancer
    config = {**FAST, "shap": {"enabled": False}}
    from_array = mlflow_explain.explain(logit_net, X_val.to_numpy(), y_val.to_numpy(), config=config)
    from_tensor = mlflow_explain.explain(
        logit_net, torch.tensor(X_val.to_numpy(), dtype=torch.float32), torch.tensor(y_val.to_numpy()), config=config
    )
    for explanation in (from_array, from_tensor):
        assert explanation.status == "ok" and explanation.task.kind == "binary"
        assert explanation.model_details["output_kind"] == "logits" and explanation.model_details["n_outputs"] == 1
        assert explanation.feature_names[:2] == ["x0", "x1"]
        assert explanation.permutation.baseline_scores["accuracy"] > 0.9
    np.testing.assert_allclose(
        from_tensor.permutation.importances["accuracy"], from_array.permutation.importances["accuracy"]
    )
    adapter = torch_estimator(logit_net, X_val, y_val.to_numpy())
    probabilities = adapter.predict_proba(X_val)
    logits = adapter.decision_function(X_val)
    np.testing.assert_allclose(probabilities[:, 1], 1 / (1 + np.exp(-logits)), rtol=1e-6)
    np.testing.assert_array_equal(adapter.predict(X_val), (logits > 0).astype(int))


def test_a_regressor_on_diabetes_is_explained(tracking_uri, sugar, regression_net):
    _, X_val, _, y_val = sugar
    explanation = mlflow_explain.explain(regression_net, X_val, y_val, config=FAST)
    assert explanation.status == "ok", explanation.errors
    assert explanation.task.kind == "regression" and explanation.model_details["output_kind"] == "regression"
    assert explanation.permutation.baseline_scores["r2"] > 0.25
    importance = dict(zip(explanation.feature_names, explanation.permutation.mean("r2"), strict=True))
    assert max(importance, key=importance.get) in ("bmi", "s5")  # diabetes' two strongest features
    assert explanation.shap.values.shape == (10, 10, 1) and explanation.shap.max_additivity_error < 1e-3


def test_probabilities_are_told_from_logits_and_the_config_decides_where_it_is_set(cancer, logits_net):
    _, X_val, _, y_val = cancer
    softmax_net = torch.nn.Sequential(logits_net, torch.nn.Softmax(dim=1))
    adapter = torch_estimator(softmax_net, X_val, y_val.to_numpy())
    assert isinstance(adapter, TorchClassifier) and adapter.output_kind == "probabilities"
    assert "summing to 1" in adapter.details["reason"] and not hasattr(adapter, "decision_function")
    logits = torch_estimator(logits_net, X_val, y_val.to_numpy())
    np.testing.assert_allclose(adapter.predict_proba(X_val), logits.predict_proba(X_val), atol=1e-6)
    np.testing.assert_array_equal(adapter.predict(X_val), logits.predict(X_val))
    # A sigmoid output is a probability only when configured; a label column names the classes.
    sigmoid_net = torch.nn.Sequential(logits_net, torch.nn.Softmax(dim=1), _Column(1))
    labels = np.where(y_val.to_numpy() == 1, "benign", "malignant")
    configured = load_config({"torch": {"output": "probabilities", "classes": ["malignant", "benign"]}}).torch
    binary = torch_estimator(sigmoid_net, X_val, labels, configured)
    assert binary.output_kind == "probabilities" and binary.classes_.tolist() == ["malignant", "benign"]
    np.testing.assert_allclose(binary.predict_proba(X_val), adapter.predict_proba(X_val), atol=1e-6)
    assert torch_estimator(sigmoid_net, X_val, labels).output_kind == "logits"  # one output: a logit by default


class _Column(torch.nn.Module):
    def __init__(self, column: int):
        super().__init__()
        self.column = column

    def forward(self, x):
        return x[:, self.column]


def test_predictions_run_in_eval_mode_batch_by_batch_and_leave_every_mode_as_it_was(cancer, logits_net):
    _, X_val, _, y_val = cancer
    logits_net.train()
    logits_net[2].eval()  # a submodule in its own mode stays in it
    running_mean = logits_net[0].running_mean.clone()
    seen = []
    hook = logits_net.register_forward_pre_hook(lambda module, inputs: seen.append((module.training, len(inputs[0]))))
    try:
        adapter = torch_estimator(logits_net, X_val, y_val.to_numpy(), load_config({"torch": {"batch_size": 50}}).torch)
        result = permutation_importance(adapter, X_val, y_val.to_numpy(), n_repeats=2)
    finally:
        hook.remove()
    assert [sub.training for sub in logits_net.modules()] == [True, True, True, False, True]
    torch.testing.assert_close(logits_net[0].running_mean, running_mean)  # no forward ran in train mode
    assert seen and not any(training for training, _ in seen)
    assert max(rows for _, rows in seen) == 50  # the engine's one batch of every copy, 50 rows per forward
    assert result.n_predict_calls == 1 and sum(rows for _, rows in seen) == len(X_val) * (1 + 1 + 30 * 2)


@pytest.mark.parametrize("case", ["logits", "logit", "regression"])
def test_permutation_importance_equals_sklearn_on_a_plain_wrapper_of_the_module(
    case, cancer, sugar, logits_net, logit_net, regression_net
):
    net = {"logits": logits_net, "logit": logit_net, "regression": regression_net}[case]
    _, X_val, _, y_val = sugar if case == "regression" else cancer
    X, y = X_val.to_numpy(), y_val.to_numpy()
    scoring = ["r2", "neg_mean_absolute_error"] if case == "regression" else ["accuracy", "neg_log_loss", "roc_auc"]
    adapter = torch_estimator(net, X, y, load_config({"torch": {"batch_size": 64}}).torch)
    assert isinstance(adapter, TorchRegressor if case == "regression" else TorchClassifier)
    ours = permutation_importance(adapter, X, y, scoring=scoring, n_repeats=3, random_state=7, max_samples=0.8)
    net.eval()
    wrapper = ModuleRegressor(net) if case == "regression" else ModuleClassifier(net)
    theirs = sklearn_permutation_importance(
        wrapper, X, y, scoring=scoring, n_repeats=3, random_state=7, max_samples=0.8
    )
    net.train()
    for name in scoring:
        np.testing.assert_allclose(ours.importances[name], theirs[name].importances, rtol=0, atol=1e-6)
    assert np.abs(ours.importances[scoring[0]]).max() > 0.01
    assert ours.n_predict_calls == 1  # every permuted copy in one engine batch, predicted 64 rows at a time


@pytest.mark.slow
def test_the_cli_and_the_evaluator_explain_models_logged_with_mlflow_pytorch(
    tracking_uri, tmp_path, cancer, sugar, logits_net, regression_net
):
    for name, net, (X_train, X_val, _, y_val), model_type, scorer in (
        ("classifier", logits_net, cancer, "classifier", "accuracy"),
        ("regressor", regression_net, sugar, "regressor", "r2"),
    ):
        with mlflow.start_run(run_name=name) as run:
            info = mlflow.pytorch.log_model(
                net,
                name="model",
                serialization_format="pickle",
                signature=infer_signature(X_train, np.zeros((1, net[-1].out_features), dtype=np.float32)),
                pip_requirements=["torch"],
            )
        data = tmp_path / f"{name}.csv"
        X_val[X_val.columns[::-1]].assign(label=y_val).to_csv(data, index=False)  # the signature puts them in order
        settings = [f"{section}.{key}={value}" for section, options in FAST.items() for key, value in options.items()]
        result = CliRunner().invoke(
            main,
            ["explain", "--model-uri", info.model_uri, "--data", str(data), "--target", "label"]
            + [arg for setting in settings for arg in ("--set", setting)],
        )
        assert result.exit_code == 0, result.output
        assert f"Explained Sequential into run {run.info.run_id}: status ok" in result.output
        summary = _summary(run.info.run_id)
        assert summary["task"]["kind"] == ("binary" if name == "classifier" else "regression")
        assert summary["feature_names"] == list(X_val.columns) and summary["shap"]["n_rows"] == 10
        metrics = MlflowClient().get_run(run.info.run_id).data.metrics
        assert metrics[f"explain/baseline_score.{scorer}"] > 0.3

        with mlflow.start_run(run_name=f"{name}-evaluated") as evaluated:
            evaluation = mlflow.models.evaluate(
                info.model_uri,
                X_val.assign(label=y_val),
                targets="label",
                model_type=model_type,
                evaluators=["explain"],
                evaluator_config={"explain": FAST},
            )
        assert evaluation.metrics[f"explain/baseline_score.{scorer}"] == pytest.approx(
            metrics[f"explain/baseline_score.{scorer}"]
        )
        evaluated_summary = _summary(evaluated.info.run_id)
        assert evaluated_summary["task"] == summary["task"]
        assert evaluated_summary["config"]["torch"]["task"] == (
            "classification" if name == "classifier" else "regression"
        )


def test_a_binary_target_explained_as_a_regression_when_the_evaluator_or_the_config_says_so(cancer, logit_net):
    _, X_val, _, y_val = cancer
    adapter = torch_estimator(logit_net, X_val, y_val.to_numpy(), load_config({"torch": {"task": "regression"}}).torch)
    assert isinstance(adapter, TorchRegressor) and adapter.details["reason"].startswith("torch.task is regression")


def test_every_input_that_cannot_work_is_one_sentence_and_no_run(tracking_uri, cancer, logits_net, logit_net):
    _, X_val, _, y_val = cancer
    y = y_val.to_numpy()

    def fails(model, X, target, match, **torch_options):
        with pytest.raises(InvalidInputError, match=match) as caught:
            mlflow_explain.explain(model, X, target, config={**FAST, "torch": torch_options})
        assert "\n" not in str(caught.value)

    fails(
        logits_net,
        X_val,
        np.where(y == 1, 2, y),
        r"label\(s\) 0, 2 but the module returns 2 outputs, \(n, 2\), "
        r"whose integer labels are 0..1; set torch.classes",
    )
    fails(
        logit_net,
        X_val,
        np.arange(len(y)) % 3,
        r"holds 3 labels \(0, 1, 2\) but the module returns one output .*"
        r"a classifier of 3 classes returns \(n, 3\)",
        task="classification",
    )
    fails(
        logits_net,
        X_val.iloc[:, 1:],
        y,
        r"The Sequential module fails on a float tensor of shape \(171, 29\) "
        r"\(rows, features\): .*; it must take a float tensor \(n, 29\) of the validation data's 29 feature columns, "
        r"but its first Linear layer takes 30 features\.",
    )
    fails(
        torch.nn.Sequential(logits_net, torch.nn.Unflatten(1, (1, 2))),
        X_val,
        y,
        r"returns shape \(171, 1, 2\) for 171 rows; it must take .* and return \(n,\), \(n, 1\) or \(n, k\)",
    )
    fails(
        logits_net,
        X_val.assign(**{"mean radius": "big"}),
        y,
        r"column\(s\) mean radius of the validation data "
        r"are not numeric",
    )
    fails(
        logits_net,
        X_val,
        y,
        r"A regressor must return one output per row, \(n,\) or \(n, 1\), but the module "
        r"returns \(n, 2\)",
        task="regression",
    )
    fails(
        logits_net,
        X_val,
        y,
        r"torch.output is 'probabilities' but the module's outputs on the validation rows do "
        r"not lie in \[0, 1\] and sum to 1 on every row \(row sums .* to .*\)",
        output="probabilities",
    )
    fails(
        logits_net,
        X_val,
        np.where(y == 1, "benign", "malignant"),
        r"torch.classes names 3 labels but the module "
        r"returns 2 outputs, so it must name 2",
        classes=["a", "b", "c"],
    )
    fails(
        torch.nn.Sequential(logits_net, torch.nn.Linear(2, 3)),
        X_val,
        np.where(y == 1, "benign", "malignant"),
        r"holds 2 label\(s\) \('benign', 'malignant'\) but the module returns 3 outputs, \(n, 3\), so which label is "
        r"which output cannot be told; set torch.classes to the 3 labels in output order",
    )
    if not torch.cuda.is_available():
        fails(logits_net, X_val, y, r"torch.device 'cuda:0' cannot take the module", device="cuda:0")
    assert mlflow.search_runs(output_format="list") == []
    assert logits_net.training  # left as it came in, also when explaining it failed
    with pytest.raises(ConfigError, match="torch.output"):
        load_config({"torch": {"output": "softmax"}})


@pytest.mark.spark
def test_the_spark_engine_refuses_a_module_in_one_sentence(logits_net):
    from mlflow_explain.spark import explain as spark_explain

    with pytest.raises(InvalidInputError, match="The Spark engine explains scikit-learn-style models"):
        spark_explain(logits_net, None, "label")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_the_same_results_on_the_gpu(cancer, logits_net):
    _, X_val, _, y_val = cancer
    y = y_val.to_numpy()
    on_cpu = torch_estimator(logits_net, X_val, y)
    on_gpu = torch_estimator(logits_net, X_val, y, load_config({"torch": {"device": "cuda"}}).torch)
    assert on_gpu.device.type == "cuda" and next(logits_net.parameters()).device.type == "cpu"
    np.testing.assert_allclose(on_gpu.predict_proba(X_val), on_cpu.predict_proba(X_val), atol=1e-5)
    gpu_result = permutation_importance(on_gpu, X_val, y, scoring="neg_log_loss", n_repeats=2)
    cpu_result = permutation_importance(on_cpu, X_val, y, scoring="neg_log_loss", n_repeats=2)
    np.testing.assert_allclose(
        gpu_result.importances["neg_log_loss"], cpu_result.importances["neg_log_loss"], atol=1e-5
    )
    gpu_module = torch_estimator(on_gpu.torch_module, X_val, y)  # a module already on the GPU stays there
    assert gpu_module.device.type == "cuda" and gpu_module.details["device"].startswith("cuda")


def test_config_section_defaults():
    config = load_config().torch
    assert (config.task, config.output, config.classes, config.batch_size, config.device) == (
        "auto",
        "auto",
        None,
        4096,
        None,
    )
    with pytest.raises(ConfigError, match="torch.batch_size"):
        load_config({"torch": {"batch_size": 0}})

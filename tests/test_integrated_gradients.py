"""Integrated Gradients beside Grad-CAM: completeness, faithfulness, the method choice and what a run gets per method.

On scikit-learn's 8x8 digits with the small CNN of ``examples/digits_cnn.py`` (trained here, a few epochs).
"""

from __future__ import annotations

import json
from pathlib import Path

import mlflow
import numpy as np
import pytest
from mlflow.tracking import MlflowClient

import mlflow_explain
from mlflow_explain import ConfigError, load_config

torch = pytest.importorskip("torch")  # the modules below import it, and captum
pytest.importorskip("captum")
pytestmark = pytest.mark.torch

from mlflow_explain.engines.image import ImageEngine, ImageRequest
from mlflow_explain.methods.integrated_gradients import IntegratedGradients, integrated_gradients
from tests.gradcam_models import digits_split, trained_digits_cnn

COMPLETENESS_TOLERANCE = 0.01  # |sum of attributions - (F(x) - F(0))| <= this x the batch's largest |F(x) - F(0)|


@pytest.fixture(scope="module")
def digits_model():
    """The digits CNN trained 3 epochs on one thread, and the validation digits."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    X_train, X_val, y_train, y_val = digits_split()
    model = trained_digits_cnn(X_train, y_train, epochs=3)
    yield model, X_val, y_val
    torch.set_num_threads(threads)


def _completeness_gaps(model, images: torch.Tensor, classes: torch.Tensor, n_steps: int):
    """Each image's |sum of attributions - (F(x) - F(0))| from the model itself, the largest |F(x) - F(0)|, details."""
    method = IntegratedGradients(model, n_steps=n_steps, internal_batch_size=256)
    attributions, _ = method.attributions(images, classes)
    rows = torch.arange(len(images))
    with torch.no_grad():
        difference = model(images)[rows, classes] - model(torch.zeros_like(images))[rows, classes]
    gaps = (attributions.flatten(1).sum(dim=1) - difference).abs()
    return gaps, difference.abs().max().item(), method.details()


def test_attributions_sum_to_the_score_difference_from_the_baseline(digits_model):
    model, images, labels = digits_model
    batch, classes = torch.from_numpy(images[:64]), torch.from_numpy(labels[:64])
    gaps, largest, details = _completeness_gaps(model, batch, classes, n_steps=32)
    assert largest > 1, "the digits move the class scores away from the all-black image"
    assert gaps.max().item() <= COMPLETENESS_TOLERANCE * largest
    assert details["max_convergence_delta"] == pytest.approx(gaps.max().item(), rel=1e-3, abs=1e-5)
    assert details["relative_convergence_delta"] < COMPLETENESS_TOLERANCE
    # A two-point integral misses the bound: the check measures the integral, it is not met by any attribution.
    coarse, _, coarse_details = _completeness_gaps(model, batch, classes, n_steps=2)
    assert coarse.max().item() > COMPLETENESS_TOLERANCE * largest
    assert coarse_details["max_convergence_delta"] > details["max_convergence_delta"]


def test_maps_point_at_the_pixels_whose_removal_drops_the_probability(digits_model):
    model, images, labels = digits_model
    result = integrated_gradients(model, images[:150], labels[:150], n_steps=16, max_images=12)
    assert result.method == "integrated_gradients" and result.n_steps == 16 and result.baseline == "zero"
    assert result.heatmaps_predicted.shape == (150, 8, 8) and result.heatmaps_predicted.min() >= 0
    assert result.faithfulness == pytest.approx(result.deletion_drop - result.random_drop)
    assert result.faithfulness > 0.2, "the 20% most attributed pixels matter far more than a random 20%"
    correct = ~result.misclassified
    np.testing.assert_allclose(result.heatmaps_true[correct], result.heatmaps_predicted[correct], atol=1e-6)
    assert not np.allclose(result.heatmaps_true[~correct], result.heatmaps_predicted[~correct])
    assert result.mean_heatmaps.shape == (10, 8, 8) and result.class_counts.sum() == 150


def test_the_config_chooses_the_methods(digits_model):
    model, images, labels = digits_model
    assert load_config().gradcam.methods == ["gradcam"]
    for methods in (["lime"], []):
        with pytest.raises(ConfigError, match=r"^Config key 'gradcam.methods' must be a non-empty list of the image"):
            load_config({"gradcam": {"methods": methods}})
    config = load_config({"gradcam": {"methods": ["integrated_gradients"]}, "integrated_gradients": {"n_steps": 4}})
    request = ImageRequest(model=model, config=config, images=images[:20], labels=labels[:20])
    explanation = ImageEngine().compute(request)
    assert explanation.gradcam is None and explanation.integrated_gradients.n_steps == 4
    assert set(explanation.timings) == {"image_scoring", "integrated_gradients"} and explanation.status == "ok"


def test_explain_images_logs_each_method_and_compares_them(tracking_uri, digits_model, tmp_path):
    model, images, labels = digits_model
    config = {
        "gradcam": {"methods": ["gradcam", "integrated_gradients"], "max_images": 8},
        "integrated_gradients": {"n_steps": 8},
    }
    with mlflow.start_run() as run:
        explanation = mlflow_explain.explain_images(model, images[:60], labels[:60], config=config)
    assert explanation.status == "ok"
    results = [explanation.gradcam, explanation.integrated_gradients]
    np.testing.assert_array_equal(results[0].positions, results[1].positions)
    np.testing.assert_array_equal(results[0].shown, results[1].shown)
    metrics = MlflowClient().get_run(run.info.run_id).data.metrics
    folder = Path(
        mlflow.artifacts.download_artifacts(run_id=run.info.run_id, artifact_path="explain", dst_path=str(tmp_path))
    )
    summary = json.loads((folder / "summary.json").read_text())
    report = (folder / "report.html").read_text()
    assert "<h2>Image attributions compared</h2>" in report
    for result in results:
        method = result.method
        for name in ("deletion_drop", "random_drop", "faithfulness"):
            assert metrics[f"{method}/{name}"] == pytest.approx(getattr(result, name))
            assert summary[method][name] == pytest.approx(getattr(result, name))
        assert metrics[f"explain/rows_{method}"] == 60 and f"explain/time_{method}_s" in metrics
        files = {path.name for path in (folder / method).iterdir()}
        assert {"mean_heatmaps.svg", "misclassified.svg", "heatmaps_predicted.npy", "positions.npy"} <= files
        shown_classes = set(labels[result.positions[result.shown]].tolist())
        assert {name for name in files if name.startswith("class_")} == {f"class_{k}.svg" for k in shown_classes}
        assert summary[method]["arrays"]["heatmaps_predicted.npy"].startswith(result.arrays["heatmaps_predicted.npy"])
        assert f"<h2>{result.title}</h2>" in report and f'alt="{method}/mean_heatmaps.svg"' in report
        assert f"<td>{result.title}</td>" in report, "a row of the comparison table"
    assert np.load(folder / "integrated_gradients" / "heatmaps_predicted.npy").shape == (60, 8, 8)
    assert summary["gradcam"]["target_layer"] == "features.2"
    assert summary["integrated_gradients"]["n_steps"] == 8
    assert summary["integrated_gradients"]["max_convergence_delta"] >= 0
    assert (
        "Completeness:" in report
        and "Mean Integrated Gradients per class" in (folder / "integrated_gradients" / "mean_heatmaps.svg").read_text()
    )


def test_a_failing_method_keeps_the_other_methods_results(digits_model, monkeypatch):
    model, images, labels = digits_model

    def out_of_memory(self, batch, classes):
        raise RuntimeError("out of memory")

    monkeypatch.setattr(IntegratedGradients, "attribute", out_of_memory)
    config = load_config({"gradcam": {"methods": ["integrated_gradients", "gradcam"]}})
    request = ImageRequest(model=model, config=config, images=images[:20], labels=labels[:20])
    explanation = ImageEngine().compute(request)
    assert explanation.status == "partial"
    assert explanation.errors == {"integrated_gradients": "RuntimeError: out of memory"}
    assert explanation.integrated_gradients is None and explanation.gradcam.deletion_drop > 0

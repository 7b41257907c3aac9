"""Grad-CAM: heatmaps that point at the class's pattern, faithfulness, logging, the CLI and bad input."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import mlflow
import numpy as np
import pytest
from click.testing import CliRunner
from mlflow.tracking import MlflowClient
from sklearn.linear_model import LogisticRegression

import mlflow_explain
from mlflow_explain import ConfigError, InvalidInputError, load_config
from mlflow_explain.triggers.cli import main

torch = pytest.importorskip("torch")  # the modules below import it, and captum
pytest.importorskip("captum")
pytestmark = pytest.mark.torch

from mlflow_explain.methods.gradcam import gradcam
from mlflow_explain.methods.image_attribution import choose_shown
from tests.gradcam_models import CLASS_NAMES, NoConvNet, pattern_images, peaks_inside, trained_pattern_net


@pytest.fixture(scope="module")
def pattern_model():
    """A CNN trained on generated images (class = which pattern), and 300 test images with their pattern boxes."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    model = trained_pattern_net()
    images, labels, corners = pattern_images(300, seed=1)
    yield model, images, labels, corners
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def pattern_result(pattern_model):
    model, images, labels, _ = pattern_model
    return gradcam(model, images, labels, CLASS_NAMES, max_images=len(images))


def test_heatmap_peak_falls_inside_the_pattern_box(pattern_model, pattern_result):
    _, images, labels, corners = pattern_model
    result = pattern_result
    correct = ~result.misclassified
    assert correct.mean() >= 0.9, "the CNN learned the patterns"
    assert result.target_layer == "features.3" and result.heatmaps_predicted.shape == (300, 10, 10)
    assert len(result.shown) == 300 and result.shown_heatmaps_predicted.shape == (300, 20, 20)
    inside = peaks_inside(result.shown_heatmaps_predicted, corners[result.positions])
    assert inside[correct].mean() >= 0.8
    # The same peaks against other images' boxes: the check is not met by chance.
    assert peaks_inside(result.shown_heatmaps_predicted, np.roll(corners, 1, axis=0))[correct].mean() < 0.3


def test_deletion_drop_is_larger_than_random_drop(pattern_result):
    assert pattern_result.deletion_drop > pattern_result.random_drop + 0.1
    assert 0 < pattern_result.deletion_drop <= 1


def test_the_true_class_heatmap_and_the_mean_per_class(pattern_result):
    result = pattern_result
    assert result.heatmaps_true.shape == result.heatmaps_predicted.shape
    correct = ~result.misclassified
    np.testing.assert_allclose(result.heatmaps_true[correct], result.heatmaps_predicted[correct], atol=1e-6)
    assert result.mean_heatmaps.shape == (3, 20, 20) and result.class_counts.sum() == 300
    assert np.all((result.mean_heatmaps >= 0) & (result.mean_heatmaps <= 1))
    np.testing.assert_allclose(result.probabilities.sum(axis=1), 1, atol=1e-5)


def test_class_grid_embeds_each_image_and_its_heatmap_overlay(pattern_result):
    import base64
    import io
    from xml.etree import ElementTree

    from PIL import Image

    from mlflow_explain.output import image_plots, plots

    result = pattern_result
    root = ElementTree.fromstring(plots.render(image_plots.class_grid(result, 1)))
    panels = [node for node in root.iter("{http://www.w3.org/2000/svg}image") if node.get("class") == "panel"]
    of_class = np.flatnonzero(result.labels[result.shown] == 1)
    assert len(panels) == 2 * len(of_class), "each image of the class, then its Grad-CAM overlay"
    first = int(of_class[0])
    image, heatmap = result.shown_images[first], result.shown_heatmaps_predicted[first]
    for panel, wanted in zip(
        panels[:2], [image_plots._picture(image, None, False), image_plots._picture(image, heatmap, False)], strict=True
    ):
        pixels = np.asarray(Image.open(io.BytesIO(base64.b64decode(panel.get("href").split(",", 1)[1]))), dtype=float)
        np.testing.assert_allclose(pixels / 255, wanted, atol=1 / 255)
    captions = [node.text for node in root.iter("{http://www.w3.org/2000/svg}text") if node.get("class") == "caption"]
    assert f"#{result.positions[result.shown[first]]} true '{result.class_names[1]}'" in captions


def test_shown_images_always_hold_the_misclassified_and_are_seeded():
    labels = np.array([0, 1, 2, 0, 1, 2, 0, 1, 2, 0, 1, 2])
    predicted = labels.copy()
    predicted[[10, 11]] = 0  # two misclassified images
    rng = np.random.RandomState
    for max_images, n_wrong in ((1, 1), (3, 1), (6, 2), (12, 2)):
        shown = choose_shown(predicted, labels, max_images, rng(0))
        assert len(shown) == max_images and np.isin([10, 11], shown).sum() == n_wrong
    shown = choose_shown(predicted, labels, 6, rng(0))
    counts = np.bincount(labels[[i for i in shown if i < 10]], minlength=3)
    assert counts.min() >= 1 and counts.max() - counts.min() <= 1, "correct images balanced over classes"
    np.testing.assert_array_equal(shown, choose_shown(predicted, labels, 6, rng(0)))
    assert any(not np.array_equal(shown, choose_shown(predicted, labels, 6, rng(seed))) for seed in range(1, 6))
    all_wrong = choose_shown(np.zeros(5, dtype=int), np.ones(5, dtype=int), 4, rng(0))
    assert len(all_wrong) == 4


def test_named_target_layer(pattern_model):
    model, images, labels, _ = pattern_model
    result = gradcam(model, images[:40], labels[:40], target_layer="features.0", max_images=8)
    assert result.target_layer == "features.0" and result.heatmaps_predicted.shape == (40, 20, 20)
    assert len(result.shown) == 8 and result.labels.tolist() == labels[:40].tolist()


def test_explain_images_logs_artifacts_and_metrics(tracking_uri, pattern_model, tmp_path):
    model, images, labels, _ = pattern_model
    labels = labels[:90].copy()
    labels[:4] = (labels[:4] + 1) % 3  # four images the model now gets "wrong"
    with mlflow.start_run() as run:
        explanation = mlflow_explain.explain_images(
            model, images[:90], labels, class_names=CLASS_NAMES, config={"gradcam": {"max_images": 12}}
        )
    assert explanation.status == "ok" and explanation.task.classes == tuple(CLASS_NAMES)
    assert set(range(4)) <= set(explanation.gradcam.positions[explanation.gradcam.shown])
    logged = MlflowClient().get_run(run.info.run_id)
    assert logged.data.metrics["gradcam/deletion_drop"] == pytest.approx(explanation.gradcam.deletion_drop)
    assert logged.data.metrics["gradcam/random_drop"] == pytest.approx(explanation.gradcam.random_drop)
    assert logged.data.metrics["explain/rows_gradcam"] == 90 and logged.data.tags["mlflow_explain.status"] == "ok"
    folder = Path(
        mlflow.artifacts.download_artifacts(run_id=run.info.run_id, artifact_path="explain", dst_path=str(tmp_path))
    )
    files = {path.name for path in (folder / "gradcam").iterdir()}
    assert {
        "class_plus.svg",
        "class_cross.svg",
        "class_square.svg",
        "misclassified.svg",
        "mean_heatmaps.svg",
        "heatmaps_predicted.npy",
        "heatmaps_true.npy",
        "mean_heatmaps.npy",
        "positions.npy",
    } <= files
    heatmaps = np.load(folder / "gradcam" / "heatmaps_predicted.npy")
    assert heatmaps.shape == (90, 10, 10) and heatmaps.min() >= 0 and heatmaps.max() > 0
    report = (folder / "report.html").read_text()
    assert "<h2>Grad-CAM</h2>" in report and "gradcam/misclassified.svg" in report and "features.3" in report
    summary = json.loads((folder / "summary.json").read_text())
    assert summary["gradcam"]["n_misclassified"] >= 4 and summary["versions"]["torch"].startswith("2.")


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda m, x, y: (m, x[:, 0, 0], y, None), "Images must have shape (n, channels, height, width)"),
        (lambda m, x, y: (m, np.repeat(x, 3, axis=1), y, None), "The model takes images with 1 channel(s)"),
        (lambda m, x, y: (m, x, y + 1, None), "Labels must be class indices from 0 to 2"),
        (lambda m, x, y: (m, x, y[:-1], None), "Labels must be one class index per image"),
        (lambda m, x, y: (NoConvNet(), x, y, None), "The model has no Conv2d layer; name the layer"),
        (lambda m, x, y: (m, x, y, "features.9"), "The model has no layer named 'features.9'"),
        (lambda m, x, y: (m, x, y, "head.2"), "Layer 'head.2' outputs shape (1, 3) for one 20 x 20 image"),
        (lambda m, x, y: (m, x[:0], y[:0], None), "There are no images to explain"),
    ],
)
def test_bad_input_is_one_clear_sentence(pattern_model, change, message):
    model, images, labels, _ = pattern_model
    model, images, labels, layer = change(model, images[:20], labels[:20])
    with pytest.raises(InvalidInputError) as caught:
        gradcam(model, images, labels, target_layer=layer)
    assert message in str(caught.value) and "\n" not in str(caught.value)


def test_explain_images_raises_on_bad_input_and_logs_nothing(tracking_uri, pattern_model):
    model, images, labels, _ = pattern_model
    with pytest.raises(InvalidInputError, match="Labels must be class indices from 0 to 2"):
        mlflow_explain.explain_images(model, images[:10], labels[:10] + 3)
    with pytest.raises(InvalidInputError, match="class_names has 2 names but the model has 3 outputs"):
        mlflow_explain.explain_images(model, images[:10], class_names=["a", "b"])
    assert mlflow.search_runs(output_format="list") == []


def test_config_section():
    config = load_config({"gradcam": {"target_layer": "features.0", "deletion_fill": "blur"}})
    assert config.gradcam.target_layer == "features.0" and config.gradcam.max_images == 32
    with pytest.raises(ConfigError, match="gradcam.deletion_fraction"):
        load_config({"gradcam": {"deletion_fraction": 1.5}})
    with pytest.raises(ConfigError, match="gradcam.deletion_fill"):
        load_config({"gradcam": {"deletion_fill": "noise"}})


def test_cli_explains_a_model_logged_with_mlflow_pytorch(tracking_uri, pattern_model, tmp_path):
    model, images, labels, _ = pattern_model
    with mlflow.start_run() as run:
        info = mlflow.pytorch.log_model(model, name="model", serialization_format="pickle", pip_requirements=["torch"])
    data = tmp_path / "val.npz"
    np.savez(data, images=images[:60], labels=labels[:60], class_names=np.array(CLASS_NAMES))
    result = CliRunner().invoke(
        main,
        [
            "explain",
            "--model-uri",
            info.model_uri,
            "--images",
            str(data),
            "--set",
            "gradcam.max_images=6",
            "--set",
            "gradcam.deletion_fill=blur",
            "--set",
            "gradcam.methods=[gradcam, integrated_gradients]",
            "--set",
            "integrated_gradients.n_steps=8",
        ],
    )
    assert result.exit_code == 0, result.output
    assert f"into run {run.info.run_id}: status ok" in result.output
    metrics = MlflowClient().get_run(run.info.run_id).data.metrics
    assert metrics["gradcam/deletion_drop"] > metrics["gradcam/random_drop"] and metrics["explain/rows_gradcam"] == 60
    artifacts = {item.path for item in MlflowClient().list_artifacts(run.info.run_id, "explain/gradcam")}
    assert "explain/gradcam/class_plus.svg" in artifacts and "explain/gradcam/heatmaps_true.npy" in artifacts
    assert metrics["integrated_gradients/faithfulness"] > 0 and metrics["explain/rows_integrated_gradients"] == 60

    bad = CliRunner().invoke(main, ["explain", "--model-uri", info.model_uri, "--images", str(data), "--data", "x.csv"])
    assert bad.exit_code == 2 and "Pass either --images" in bad.stderr
    np.savez(tmp_path / "wrong.npz", pictures=images[:5])
    bad = CliRunner().invoke(main, ["explain", "--model-uri", info.model_uri, "--images", str(tmp_path / "wrong.npz")])
    assert bad.exit_code == 2 and "must be a .npz holding an array named 'images'" in bad.stderr
    with mlflow.start_run():
        flat = images[:30].reshape(30, -1)
        sklearn_info = mlflow.sklearn.log_model(
            LogisticRegression().fit(flat, labels[:30]),
            name="model",
            serialization_format="cloudpickle",
            pip_requirements=["scikit-learn"],
        )
    bad = CliRunner().invoke(main, ["explain", "--model-uri", sklearn_info.model_uri, "--images", str(data)])
    assert bad.exit_code == 2 and "was not logged with mlflow.pytorch" in bad.stderr


_WITHOUT_TORCH = """
import importlib.abc, sys

class NotInstalled(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name.split(".")[0] in ("torch", "captum"):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)

sys.meta_path.insert(0, NotInstalled())
import mlflow_explain
try:
    mlflow_explain.explain_images(object(), [[[0.0]]])
except mlflow_explain.MissingDependencyError as err:
    print("ERROR", err)
"""


@pytest.mark.integration
def test_without_torch_the_package_imports_and_grad_cam_says_what_to_install():
    done = subprocess.run([sys.executable, "-c", _WITHOUT_TORCH], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "ERROR Grad-CAM needs PyTorch and Captum (torch is not installed)" in done.stdout
    assert "mlflow-explain[torch]" in done.stdout

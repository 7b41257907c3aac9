"""autolog() after Lightning's Trainer.fit: the trained module explained on its validation rows, into the right run,
alone and beside mlflow.pytorch.autolog(); library, sanity-check and nested fits left alone; fit never broken."""

from __future__ import annotations

import importlib
import json
import logging
import subprocess
import sys
import textwrap

import mlflow
import numpy as np
import pytest
from mlflow.tracking import MlflowClient

import mlflow_explain
from mlflow_explain.triggers import explain as api
from mlflow_explain.triggers import explain_images as image_api

from .helpers import REPOSITORY

torch = pytest.importorskip("torch")
pytest.importorskip("captum")
L = pytest.importorskip("lightning.pytorch")
pytestmark = pytest.mark.torch

from tests.lightning_models import (  # noqa: E402
    DataModule,
    breast_cancer,
    cancer_mlp,
    digits,
    digits_cnn,
    loaders,
    quiet_trainer,
)

autolog_module = importlib.import_module(
    "mlflow_explain.triggers.autolog.autolog"
)  # the package's autolog name is the function

IMAGES = {"gradcam": {"max_images": 8, "max_rows": 100, "batch_size": 100}}
TABLES = {
    "permutation": {"n_repeats": 2},
    "shap": {"max_rows": 5, "permutation_max_rows": 5, "background_rows": 10, "dependence_top_k": 1, "local_rows": 1},
    "logging": {"report": False},
}


@pytest.fixture(autouse=True)
def autologs_off_afterwards(monkeypatch):
    """A fresh autolog state for each test; every autolog switched off after it."""
    monkeypatch.setattr(autolog_module, "_state", autolog_module._State())
    yield
    mlflow_explain.autolog(disable=True)
    mlflow.pytorch.autolog(disable=True)


@pytest.fixture
def requested(monkeypatch):
    """What autolog asks to explain, without computing it: (function, model class, shape of X, number of labels)."""
    calls = []

    def recording(function):
        def record(model, X, y=None, **kwargs):
            calls.append((function, type(model).__name__, tuple(np.shape(X)), None if y is None else len(y)))

        return record

    monkeypatch.setattr(api, "explain", recording("explain"))
    monkeypatch.setattr(image_api, "explain_images", recording("explain_images"))
    return calls


@pytest.fixture(scope="module")
def image_sets():
    return digits(n_val=200)


def _run(run_id):
    return MlflowClient().get_run(run_id)


def _runs():
    return MlflowClient().search_runs([mlflow.get_experiment_by_name("tests").experiment_id])


# Explained for real: images, tables, beside MLflow's own autologging.


def test_image_fit_gets_gradcam_from_the_val_dataloader_into_the_active_run(tracking_uri, image_sets):
    mlflow_explain.autolog(config=IMAGES)
    with mlflow.start_run() as run:
        mlflow.log_param("chosen_by_user", "yes")
        quiet_trainer().fit(digits_cnn(), *loaders(*image_sets))
    logged = _run(run.info.run_id)
    assert logged.data.tags["mlflow_explain.status"] == "ok" and logged.data.params["chosen_by_user"] == "yes"
    assert logged.data.metrics["explain/rows_gradcam"] == 100, "the first gradcam.max_rows validation images"
    assert 0 < logged.data.metrics["gradcam/deletion_drop"] <= 1
    gradcam = {
        item.path.rsplit("/", 1)[-1] for item in MlflowClient().list_artifacts(run.info.run_id, "explain/gradcam")
    }
    assert {"mean_heatmaps.svg", "heatmaps_predicted.npy"} <= gradcam
    assert len(_runs()) == 1


@pytest.mark.slow  # trains an MLP; SHAP takes the sampled path (seconds per row) until the deep one exists
def test_tabular_fit_gets_permutation_importance_and_shap_in_a_run_of_its_own(tracking_uri):
    train, val = breast_cancer(n_val=120)
    mlflow_explain.autolog(config=TABLES)
    trainer = quiet_trainer(max_epochs=5)
    trainer.fit(cancer_mlp(), *loaders(train, val))
    (run,) = _runs()
    logged = _run(run.info.run_id)
    assert logged.info.run_name == "mlflow_explain" and logged.data.tags["mlflow_explain.status"] == "ok"
    assert logged.data.metrics["explain/rows_validation"] == 120
    importances = {key for key in logged.data.metrics if key.startswith("permutation_importance/")}
    assert len(importances) == 8 and "permutation_importance/x0" in importances
    assert any(key.startswith("shap_mean_abs/") for key in logged.data.metrics)
    assert mlflow.active_run() is None and trainer.state.finished


@pytest.mark.parametrize("mlflow_first", [True, False], ids=["mlflow-autolog-first", "mlflow-autolog-second"])
def test_with_mlflow_pytorch_autolog_explains_into_its_run(tracking_uri, image_sets, monkeypatch, mlflow_first):
    monkeypatch.setattr("mlflow.utils.environment._infer_requirements", lambda *args, **kwargs: [])  # seconds each
    if mlflow_first:
        mlflow.pytorch.autolog(checkpoint=False)
    mlflow_explain.autolog(config=IMAGES)
    if not mlflow_first:
        mlflow.pytorch.autolog(checkpoint=False)
    quiet_trainer().fit(digits_cnn(), *loaders(*image_sets))
    (run,) = _runs()
    logged = _run(run.info.run_id)
    assert logged.data.params["epochs"] == "2" and logged.data.params["optimizer_name"] == "Adam", "MLflow's params"
    assert {"train_loss", "val_loss"} <= set(logged.data.metrics), "MLflow's metrics"
    assert logged.data.tags["mlflow_explain.status"] == "ok" and "gradcam/deletion_drop" in logged.data.metrics
    models = MlflowClient().search_logged_models([run.info.experiment_id])
    assert [model.source_run_id for model in models] == [run.info.run_id], "MLflow logged the model into the run"


# Which rows, which fits: what autolog asks to explain.


def test_the_datamodules_val_dataloader_when_fit_gets_no_loader(tracking_uri, image_sets, requested):
    mlflow_explain.autolog()
    with mlflow.start_run():
        quiet_trainer(max_epochs=1).fit(digits_cnn(), datamodule=DataModule(*image_sets))
    assert requested == [("explain_images", "Classifier", (200, 1, 8, 8), 200)]


def test_set_validation_data_comes_before_the_loader(tracking_uri, image_sets, requested):
    images, labels = image_sets[1].tensors
    mlflow_explain.autolog(validation_data=(images[:30], labels[:30]))
    with mlflow.start_run():
        mlflow_explain.set_validation_data(images[:50].numpy(), labels[:50].numpy())
        quiet_trainer(max_epochs=1).fit(digits_cnn(), *loaders(*image_sets))
    with mlflow.start_run():
        quiet_trainer(max_epochs=1).fit(digits_cnn(), *loaders(*image_sets))
    assert [call[2] for call in requested] == [(50, 1, 8, 8), (30, 1, 8, 8)], "the run's rows, then autolog's"


def test_sanity_check_and_tuner_fits_are_not_explained(tracking_uri, image_sets, requested, caplog):
    from lightning.pytorch.tuner import Tuner

    mlflow_explain.autolog()
    model, (train_loader, val_loader) = digits_cnn(), loaders(*image_sets)
    with mlflow.start_run(), caplog.at_level(logging.INFO, logger="mlflow_explain"):
        quiet_trainer(fast_dev_run=True).fit(model, train_loader, val_loader)
        trainer = quiet_trainer(max_epochs=1)
        Tuner(trainer).lr_find(model, train_loader, val_loader, num_training=4, update_attr=False)
        assert requested == [], "fast_dev_run and the learning-rate finder's fit"
        trainer.fit(model, train_loader, val_loader)
    assert [call[0] for call in requested] == ["explain_images"], "the user's own fit"
    assert any("fast_dev_run" in record.message for record in caplog.records)


def test_a_fit_nested_in_another_is_not_explained(tracking_uri, image_sets, requested):
    inner_trained = []

    class TrainsAnotherModel(L.Callback):
        def on_train_end(self, trainer, module):
            quiet_trainer(max_epochs=1).fit(digits_cnn(), *loaders(*image_sets))
            inner_trained.append(True)

    mlflow_explain.autolog()
    with mlflow.start_run():
        quiet_trainer(max_epochs=1, callbacks=[TrainsAnotherModel()]).fit(digits_cnn(), *loaders(*image_sets))
    assert inner_trained == [True] and len(requested) == 1


def test_the_older_pytorch_lightning_packages_trainer_too(tracking_uri, image_sets, requested):
    pytorch_lightning = pytest.importorskip("pytorch_lightning")
    from tests.lightning_models import OlderPackageClassifier

    mlflow_explain.autolog()
    with mlflow.start_run():
        trainer = quiet_trainer(pytorch_lightning, max_epochs=1)
        trainer.fit(digits_cnn(OlderPackageClassifier), *loaders(*image_sets))
    assert requested == [("explain_images", "OlderPackageClassifier", (200, 1, 8, 8), 200)]


def test_without_validation_rows_it_warns_and_makes_no_run(tracking_uri, image_sets, requested, caplog):
    mlflow_explain.autolog()
    with caplog.at_level(logging.WARNING, logger="mlflow_explain"):
        quiet_trainer(max_epochs=1, limit_val_batches=0).fit(digits_cnn(), loaders(*image_sets)[0])
    assert requested == [] and _runs() == []
    assert any("no validation data" in record.message for record in caplog.records)


# Never breaks fit; failures are recorded in the run.


def test_batches_it_cannot_read_fail_the_explanation_not_the_fit(tracking_uri, image_sets, tmp_path):
    dict_batches = torch.utils.data.DataLoader([{"pixels": image} for image in image_sets[1].tensors[0]], batch_size=64)
    mlflow_explain.autolog(config=IMAGES)
    with mlflow.start_run() as run:
        trainer = quiet_trainer(max_epochs=1, limit_val_batches=0)
        trainer.fit(digits_cnn(), loaders(*image_sets)[0], dict_batches)
    assert trainer.state.finished
    logged = _run(run.info.run_id)
    assert logged.data.tags["mlflow_explain.status"] == "failed"
    error = open(MlflowClient().download_artifacts(run.info.run_id, "explain/error.txt", str(tmp_path))).read()
    assert error.startswith("InvalidInputError: Validation batches are dicts") and "set_validation_data" in error


def test_inputs_neither_tables_nor_images_fail_the_explanation_with_one_sentence(tracking_uri, image_sets, tmp_path):
    images, labels = image_sets[1].tensors
    mlflow_explain.autolog(validation_data=(images[:, 0], labels))  # (n, 8, 8): one channel dropped
    with mlflow.start_run() as run:
        quiet_trainer(max_epochs=1).fit(digits_cnn(), loaders(*image_sets)[0])
    assert _run(run.info.run_id).data.tags["mlflow_explain.status"] == "failed"
    error = open(MlflowClient().download_artifacts(run.info.run_id, "explain/error.txt", str(tmp_path))).read()
    assert error.startswith("InvalidInputError: Validation inputs of shape (200, 8, 8) are neither a table")


def test_a_failing_explanation_leaves_mlflows_run_intact(tracking_uri, image_sets, monkeypatch, tmp_path):
    monkeypatch.setattr("mlflow.utils.environment._infer_requirements", lambda *args, **kwargs: [])
    images, labels = image_sets[1].tensors
    mlflow.pytorch.autolog(checkpoint=False)
    mlflow_explain.autolog(validation_data=(images.repeat(1, 3, 1, 1), labels), config=IMAGES)  # 3 channels, not 1
    quiet_trainer(max_epochs=1).fit(digits_cnn(), *loaders(*image_sets))
    (run,) = _runs()
    logged = _run(run.info.run_id)
    assert logged.data.tags["mlflow_explain.status"] == "failed" and "train_loss" in logged.data.metrics
    assert logged.data.params["epochs"] == "1" and not any(key.startswith("gradcam/") for key in logged.data.metrics)
    error = open(MlflowClient().download_artifacts(run.info.run_id, "explain/error.txt", str(tmp_path))).read()
    assert error.startswith("InvalidInputError") and "channel" in error
    assert [model.source_run_id for model in MlflowClient().search_logged_models([run.info.experiment_id])] == [
        run.info.run_id
    ]


# Lazy: nothing imported by autolog(), the Trainer patched once Lightning is imported, and put back exactly.

_LAZY_PROBE = """
import importlib, json, sys
autolog_module = importlib.import_module("mlflow_explain.triggers.autolog.autolog")
from mlflow_explain.triggers.autolog import patch as autolog_patch
autolog_module.autolog()
imported = sorted(name for name in sys.modules if name.split(".")[0] in ("torch", "lightning", "pytorch_lightning"))
import lightning.pytorch, pytorch_lightning
trainers = (lightning.pytorch.Trainer, pytorch_lightning.Trainer)
own_fits = [autolog_patch._wrapped_by.get(trainer.__dict__["fit"]) for trainer in trainers]  # None: not a wrapper
autolog_module.autolog(disable=True)
restored = [trainer.__dict__["fit"] is fit for trainer, fit in zip(trainers, own_fits)]
print(json.dumps({"imported": imported, "wrapped": [fit is not None for fit in own_fits], "restored": restored}))
"""


@pytest.mark.integration  # a fresh interpreter
@pytest.mark.slow  # that imports Lightning (10-40 s)
def test_autolog_imports_no_lightning_and_patches_the_trainer_once_it_is_imported():
    pytest.importorskip("pytorch_lightning")
    env = {"PYTHONPATH": str(REPOSITORY), "PATH": "/usr/bin:/bin"}
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(_LAZY_PROBE)], capture_output=True, text=True, env=env, check=True
    )
    probe = json.loads(result.stdout.strip().splitlines()[-1])
    assert probe == {"imported": [], "wrapped": [True, True], "restored": [True, True]}

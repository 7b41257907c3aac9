"""Grad-CAM and Integrated Gradients: a small CNN on scikit-learn's digits, logged with mlflow.pytorch, explained.

    pip install -e ".[torch]" -c constraints/ci.txt && python examples/gradcam_digits.py

Trains for about a minute on a CPU (GRADCAM_EPOCHS sets the number of epochs), then logs
Grad-CAM heatmaps of the validation digits into a local SQLite store (sqlite:///mlflow.db):
grids per class and of the misclassified digits, mean heatmaps per class, raw heatmaps as
.npy, the faithfulness metrics gradcam/deletion_drop, gradcam/random_drop and gradcam/faithfulness,
and a report; the same for Integrated Gradients beside Grad-CAM (config gradcam.methods).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import mlflow
import numpy as np
import torch
from digits_cnn import DigitsCNN, train
from example_store import TRACKING_URI, browse_hint
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

import mlflow_explain

EPOCHS = int(os.environ.get("GRADCAM_EPOCHS", "30"))


def main() -> str:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    torch.manual_seed(0)
    mlflow.set_tracking_uri(TRACKING_URI)
    mlflow.set_experiment("mlflow_explain gradcam digits")

    digits = load_digits()
    X = (digits.images / 16.0).astype(np.float32)[:, None]  # (n, 1, 8, 8), pixels in [0, 1]
    y = digits.target.astype(np.int64)
    X_train, X_val, y_train, y_val = train_test_split(X, y, test_size=0.3, random_state=0, stratify=y)

    with mlflow.start_run(run_name="digits-cnn") as run:
        model = DigitsCNN()
        train(model, X_train, y_train, EPOCHS)
        with torch.no_grad():
            accuracy = float((model(torch.from_numpy(X_val)).argmax(dim=1).numpy() == y_val).mean())
        mlflow.log_params({"epochs": EPOCHS, "optimizer": "adam", "lr": 2e-3})
        mlflow.log_metric("val_accuracy", accuracy)
        mlflow.pytorch.log_model(
            model,
            name="model",
            serialization_format="pickle",
            code_paths=[str(Path(__file__).with_name("digits_cnn.py"))],
            pip_requirements=[f"torch=={torch.__version__.split('+')[0]}"],
        )
        explanation = mlflow_explain.explain_images(
            model,
            X_val,
            y_val,
            class_names=[str(d) for d in range(10)],
            config={"gradcam": {"methods": ["gradcam", "integrated_gradients"]}},
        )

    result = explanation.gradcam
    print(
        f"Explained run {run.info.run_id} (status: {explanation.status}, val accuracy {accuracy:.3f}, "
        f"layer {result.target_layer})."
    )
    for method in explanation.image_results:
        print(
            f"Faithfulness of {method.title}: hiding its top {method.deletion_fraction:.0%} pixels drops the "
            f"predicted probability by {method.deletion_drop:.3f}, a random {method.deletion_fraction:.0%} by "
            f"{method.random_drop:.3f} ({method.method}/faithfulness {method.faithfulness:+.3f})."
        )
    print(
        "Browse it in the MLflow UI (explain/report.html, explain/gradcam/ and explain/integrated_gradients/ "
        "under the run's artifacts):"
    )
    print(f"    {browse_hint()}")
    return run.info.run_id


if __name__ == "__main__":
    main()

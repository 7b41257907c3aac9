"""Grad-CAM against Integrated Gradients: time, faithfulness, localisation and completeness, side by side.

    python benchmarks/image_methods.py            # both models (about two minutes on one idle core)
    python benchmarks/image_methods.py --quick    # fewer steps and images

Two small CNNs, each trained here (seeded, one thread):

- the digits CNN of ``examples/digits_cnn.py`` on scikit-learn's 8x8 digits (540 validation images);
- ``tests/gradcam_models.PatternNet`` on generated 20x20 images whose class is a pattern drawn at a
  known place (300 test images), where a map's peak can be checked against the pattern's box.

For each: Grad-CAM, then Integrated Gradients at several ``n_steps`` (zero baseline, the
configured map: the positive part of the channel sum), and once with the absolute value of the
channel sum instead, to show why the positive part is the map (its deletion drop). Printed per
method: seconds, deletion and random drop (zero fill, 20% of the pixels), their difference (faithfulness), the
share of correctly classified images whose peak lies in the pattern's box (PatternNet), and IG's
completeness gaps (largest |delta|; all |delta| over all |F(x) - F(baseline)|).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from mlflow_explain.methods.gradcam import GradCam  # noqa: E402
from mlflow_explain.methods.image_attribution import ImageAttribution, prepare_images  # noqa: E402
from mlflow_explain.methods.integrated_gradients import IntegratedGradients  # noqa: E402
from tests.gradcam_models import (  # noqa: E402
    digits_split,
    pattern_images,
    peaks_inside,
    trained_digits_cnn,
    trained_pattern_net,
)


class AbsoluteIntegratedGradients(IntegratedGradients):
    """IG with the map |sum over channels| instead of its positive part (the alternative measured here)."""

    def attribute(self, batch: torch.Tensor, classes: torch.Tensor) -> torch.Tensor:
        attributions, _ = self.attributions(batch, classes)
        return attributions.sum(dim=1).abs()


def digits_case(epochs: int) -> tuple[torch.nn.Module, np.ndarray, np.ndarray, None]:
    X_train, X_val, y_train, y_val = digits_split()
    return trained_digits_cnn(X_train, y_train, epochs), X_val, y_val, None


def pattern_case() -> tuple[torch.nn.Module, np.ndarray, np.ndarray, np.ndarray]:
    model = trained_pattern_net()
    images, labels, corners = pattern_images(300, seed=1)
    return model, images, labels, corners


def measure(name: str, method: ImageAttribution, model, images, labels, corners) -> None:
    prepared = prepare_images(model, images, labels, max_images=len(images), max_rows=len(images))
    started = time.perf_counter()
    result = method.explain(prepared)
    seconds = time.perf_counter() - started
    line = (
        f"  {name:<34} {seconds:7.2f} s   deletion {result.deletion_drop:.3f}   random {result.random_drop:.3f}"
        f"   faithfulness {result.faithfulness:+.3f}"
    )
    if corners is not None:
        correct = ~result.misclassified
        inside = peaks_inside(result.shown_heatmaps_predicted, corners[result.positions])
        line += f"   peak in box {inside[correct].mean():.2f}"
    details = method.details()
    if "max_convergence_delta" in details:
        line += (
            f"   max |delta| {details['max_convergence_delta']:.1e}"
            f"   relative {details['relative_convergence_delta']:.1e}"
        )
    print(line, flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer steps, fewer training epochs")
    args = parser.parse_args()
    torch.set_num_threads(1)
    print(f"load average {os.getloadavg()[0]:.2f}, torch {torch.__version__}, one thread", flush=True)
    steps = (8, 32) if args.quick else (8, 16, 32, 64)
    cases = {
        "digits CNN (540 images, 1x8x8)": lambda: digits_case(5 if args.quick else 30),
        "PatternNet (300 images, 1x20x20)": pattern_case,
    }
    for title, build in cases.items():
        started = time.perf_counter()
        model, images, labels, corners = build()
        print(f"{title}: trained in {time.perf_counter() - started:.1f} s", flush=True)
        measure("Grad-CAM", GradCam(model), model, images, labels, corners)
        for n_steps in steps:
            method = IntegratedGradients(model, n_steps=n_steps, internal_batch_size=64)
            measure(f"IG n_steps={n_steps}", method, model, images, labels, corners)
        for internal in (256, 1024):
            method = IntegratedGradients(model, n_steps=32, internal_batch_size=internal)
            measure(f"IG n_steps=32 internal={internal}", method, model, images, labels, corners)
        method = AbsoluteIntegratedGradients(model, n_steps=32, internal_batch_size=64)
        measure("IG n_steps=32, |channel sum| map", method, model, images, labels, corners)
        method = IntegratedGradients(model, n_steps=32, baseline="blur", internal_batch_size=64)
        measure("IG n_steps=32, blur baseline", method, model, images, labels, corners)


if __name__ == "__main__":
    main()

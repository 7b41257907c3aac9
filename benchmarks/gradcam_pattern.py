"""How well Grad-CAM localises and how faithful it is, on the generated-pattern CNN of the tests.

    python benchmarks/gradcam_pattern.py

Trains tests/gradcam_models.PatternNet (one thread, seeded), explains 300 test images and
prints: test accuracy, the share of correctly classified images whose Grad-CAM peak falls in
the pattern's box (chance: 25 / 400 pixels = 6%), and the deletion and random drops for both
fills, with the seconds each step took.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mlflow_explain.methods.gradcam import gradcam  # noqa: E402
from tests.gradcam_models import PATTERN, pattern_images, trained_pattern_net  # noqa: E402


def main() -> None:
    torch.set_num_threads(1)
    started = time.perf_counter()
    model = trained_pattern_net()
    trained = time.perf_counter()
    images, labels, corners = pattern_images(300, seed=1)
    print(f"training: {trained - started:.1f} s")
    for fill in ("zero", "blur"):
        started = time.perf_counter()
        result = gradcam(model, images, labels, max_images=len(images), deletion_fill=fill)
        seconds = time.perf_counter() - started
        maps = result.shown_heatmaps_predicted
        rows, columns = np.unravel_index(maps.reshape(len(maps), -1).argmax(axis=1), maps.shape[1:])
        box = corners[result.positions]
        inside = (
            (rows >= box[:, 0])
            & (rows < box[:, 0] + PATTERN)
            & (columns >= box[:, 1])
            & (columns < box[:, 1] + PATTERN)
        )
        correct = ~result.misclassified
        print(
            f"fill={fill}: accuracy {correct.mean():.3f}, peak inside the pattern box {inside[correct].mean():.3f}, "
            f"deletion drop {result.deletion_drop:.3f}, random drop {result.random_drop:.3f} "
            f"({seconds:.1f} s for {len(images)} images)"
        )


if __name__ == "__main__":
    main()

"""Grad-CAM (and Integrated Gradients) per image: a vit_b_16-shaped transformer beside a resnet18-shaped CNN.

    python benchmarks/vit_gradcam.py                 # Grad-CAM on 8 images of 224 x 224, IG (8 steps) on 2
    python benchmarks/vit_gradcam.py --ig-steps 0    # Grad-CAM only
    python benchmarks/vit_gradcam.py --localisation-seeds 30   # and how often a trained ViT's peak finds the square
    python benchmarks/vit_gradcam.py --images 0 --localisation-seeds 30   # that alone

Both models are hand-built with torchvision's layer names and parameter counts (86.6 M and
11.7 M; the torchvision wheel does not import here, and nothing is downloaded), with seeded
random weights: timings do not depend on what the weights learned. Each method runs through
``ImageAttribution.explain`` on the same prepared images, as ``explain_images`` does: the maps
of the predicted class (the layer chosen and read as ``explain_images`` would: the ViT's last
block's first norm, its tokens reshaped to the 14 x 14 patch grid; the CNN's last Conv2d) and
the faithfulness test (one more forward pass of the images with pixels removed, twice);
Integrated Gradients on the first ``--ig-images`` only (it costs ``--ig-steps`` forward and
backward passes per image). Printed per model and method: seconds in all, seconds per image,
and the layer read.

``--localisation-seeds N`` also trains N small ViTs (``tests.gradcam_models.trained_square_vit``,
seeds 0 to N-1, one thread, a few seconds each) on 64 x 64 images whose bright square's colour is
the class, and prints per seed the share of 200 test images whose Grad-CAM peak (default layer)
lies on the square, per class and in all (chance: 1 in 16 patches), the faithfulness test's
deletion and random drops, and the same share for Integrated Gradients (64 steps).
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
    ResNet18,
    VisionTransformer,
    peaks_inside,
    square_images,
    trained_square_vit,
)


def vit_b_16() -> torch.nn.Module:
    """torchvision's vit_b_16: patch 16 on 224 x 224, 12 blocks of width 768, 12 heads, MLP 3072, 1000 classes."""
    return VisionTransformer(224, 16, n_layers=12, hidden=768, heads=12, mlp_dim=3072, n_classes=1000)


def measure(name: str, method: ImageAttribution, images: torch.Tensor, batch_size: int) -> None:
    prepared = prepare_images(method.model, images, max_images=len(images), batch_size=batch_size)
    started = time.perf_counter()
    result = method.explain(prepared, batch_size=batch_size)
    seconds = time.perf_counter() - started
    layer = f"   layer {result.target_layer}: {result.layer_layout}" if hasattr(result, "target_layer") else ""
    print(f"  {name:<28} {seconds:7.2f} s   {seconds / len(images):6.3f} s per image{layer}", flush=True)


def localisation(n_seeds: int) -> None:
    """Per seed, the share of test images whose Grad-CAM peak lies on the square, by class and in all."""
    from mlflow_explain.methods.gradcam import gradcam
    from mlflow_explain.methods.integrated_gradients import integrated_gradients

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    images, labels, corners = square_images(200, seed=1)
    shares: dict[str, list[float]] = {"Grad-CAM": [], "IG": []}
    for seed in range(n_seeds):
        model = trained_square_vit(seed=seed)
        result = gradcam(model, images, labels, max_images=len(images))
        inside = peaks_inside(result.shown_heatmaps_predicted, corners[result.positions], box=16)
        by_class = "  ".join(f"{inside[labels == k].mean():.2f}" for k in range(3))
        attributions = integrated_gradients(model, images, labels, n_steps=64, max_images=len(images))
        ig_inside = peaks_inside(attributions.shown_heatmaps_predicted, corners[attributions.positions], box=16)
        shares["Grad-CAM"].append(inside.mean())
        shares["IG"].append(ig_inside.mean())
        print(
            f"  seed {seed:>2}: Grad-CAM peak on the square {inside.mean():.2f}   by class {by_class}   "
            f"deletion drop {result.deletion_drop:.3f}, random {round(result.random_drop, 3) + 0.0:.3f}   "
            f"IG (64 steps) peak on the square {ig_inside.mean():.2f}",
            flush=True,
        )
    for method, values in shares.items():
        values = np.array(values)
        print(
            f"  {method}, {n_seeds} seeds: mean {values.mean():.2f}, median {np.median(values):.2f}, "
            f"at least 0.9: {(values >= 0.9).sum()}, at most 0.1: {(values <= 0.1).sum()} (chance 0.06)",
            flush=True,
        )
    torch.set_num_threads(threads)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=8, help="images of 3 x 224 x 224 (default 8; 0: no timings)")
    parser.add_argument("--ig-steps", type=int, default=8, help="Integrated Gradients steps; 0 to skip it")
    parser.add_argument("--ig-images", type=int, default=2, help="images Integrated Gradients explains")
    parser.add_argument("--batch-size", type=int, default=8, help="images per forward/backward pass")
    parser.add_argument("--localisation-seeds", type=int, default=0, help="small ViTs trained to check localisation")
    args = parser.parse_args()
    torch.manual_seed(0)
    images = torch.rand(args.images, 3, 224, 224)
    print(
        f"load average {os.getloadavg()[0]:.2f}, torch {torch.__version__}, {torch.get_num_threads()} threads, "
        f"{args.images} images of 224 x 224",
        flush=True,
    )
    for title, build in (("vit_b_16-shaped ViT", vit_b_16), ("resnet18-shaped CNN", ResNet18)) if args.images else ():
        model = build().eval()
        print(f"{title} ({sum(p.numel() for p in model.parameters()) / 1e6:.1f} M parameters)", flush=True)
        measure("Grad-CAM", GradCam(model), images, args.batch_size)
        if args.ig_steps:
            method = IntegratedGradients(model, n_steps=args.ig_steps, internal_batch_size=args.batch_size)
            measure(f"IG n_steps={args.ig_steps}", method, images[: args.ig_images], args.batch_size)
    if args.localisation_seeds:
        print("small ViTs trained on coloured squares (64 x 64, patch 16), Grad-CAM of the last block's norm1:")
        localisation(args.localisation_seeds)


if __name__ == "__main__":
    main()

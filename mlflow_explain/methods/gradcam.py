"""Grad-CAM heatmaps of a PyTorch image classifier, computed with Captum's ``LayerGradCam`` (no MLflow).

Captum (maintained by the PyTorch team) computes the gradients and the channel-weighted
activations of the target layer; this module finds that layer, checks the input, batches the
images on the model's device, chooses which images to show, and scales the maps to the images.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import torch
from captum.attr import LayerAttribution, LayerGradCam
from tqdm.auto import tqdm

from ..errors import InvalidInputError
from ..results import GradcamResult
from .faithfulness import Fill, deletion_drops

logger = logging.getLogger(__name__)


def gradcam(
    model: torch.nn.Module,
    images: Any,
    labels: Any = None,
    class_names: Sequence[str] | None = None,
    *,
    target_layer: str | None = None,
    max_images: int = 32,
    max_rows: int = 1000,
    batch_size: int = 64,
    deletion_fraction: float = 0.2,
    deletion_fill: Fill = "zero",
    random_state: int = 0,
) -> GradcamResult:
    """Grad-CAM heatmaps of the predicted and the true class, and how faithful they are.

    Parameters
    ----------
    model : torch.nn.Module
        A classifier returning one score (logit or probability) per class; it stays on its device.
    images : array or Tensor of shape (n, C, H, W), (n, H, W, C), or (n, H, W) for one channel
        Validation images, prepared as the model expects them.
    labels : array-like of shape (n,), default=None
        True class indices; they add the true-class heatmaps and the misclassified images.
    class_names : sequence of str, default=None
        One name per class (default: the class indices).
    target_layer : str, default=None
        Name of the layer to explain (as in ``model.named_modules()``); default the last
        ``Conv2d`` the forward pass runs.
    max_images : int, default=32
        Images drawn in the grids: misclassified ones always among them, the rest a seeded
        choice balanced over classes.
    max_rows : int, default=1000
        Images explained at most (a seeded sample beyond that, always holding the shown ones).
    batch_size : int, default=64
        Images per forward/backward pass.
    deletion_fraction : float, default=0.2
        Share of the pixels removed by the faithfulness test.
    deletion_fill : {"zero", "blur"}, default="zero"
        What the removed pixels become.
    random_state : int, default=0
        Seed of every random choice (shown images, sample, random pixels).

    Returns
    -------
    GradcamResult

    Raises
    ------
    InvalidInputError
        On images of the wrong shape or channel count, labels out of range, no convolutional
        layer without ``target_layer``, or a model that is not a classifier.

    Examples
    --------
    >>> result = gradcam(cnn, images, labels, class_names=["cat", "dog"])  # doctest: +SKIP
    >>> result.deletion_drop > result.random_drop  # doctest: +SKIP
    True
    """
    if not isinstance(model, torch.nn.Module):
        raise InvalidInputError(f"Grad-CAM explains PyTorch models (torch.nn.Module), not {type(model).__name__}.")
    device = _device(model)
    images = check_images(model, images)
    rng = np.random.RandomState(random_state)
    generator = torch.Generator().manual_seed(random_state)
    with _eval_mode(model):
        layer_name, layer = find_target_layer(model, target_layer, torch.from_numpy(images[:1]).to(device))
        scores = _scores(model, images, batch_size, device)
        as_probabilities = _are_probabilities(scores)
        probabilities = scores if as_probabilities else torch.softmax(torch.from_numpy(scores), dim=1).numpy()
        n_classes = probabilities.shape[1]
        labels = check_labels(labels, len(images), n_classes)
        names = _class_names(class_names, n_classes)
        shown = choose_shown(probabilities.argmax(axis=1), labels, max_images, rng)
        positions = _sample(len(images), shown, max_rows, rng)
        maps = _HeatmapBatches(model, layer, layer_name, images.shape[-2:], as_probabilities)
        accumulated = maps.run(
            images,
            positions,
            probabilities,
            labels,
            batch_size,
            device,
            shown,
            deletion_fraction,
            deletion_fill,
            generator,
        )
    counts = accumulated["class_counts"]
    with np.errstate(invalid="ignore", divide="ignore"):
        means = accumulated["class_sums"] / counts[:, None, None]
    return GradcamResult(
        target_layer=layer_name,
        class_names=names,
        positions=positions,
        probabilities=probabilities[positions],
        labels=None if labels is None else labels[positions],
        heatmaps_predicted=accumulated["raw_predicted"],
        heatmaps_true=accumulated.get("raw_true"),
        mean_heatmaps=means,
        class_counts=counts,
        shown=np.searchsorted(positions, shown),
        shown_images=images[shown],
        shown_heatmaps_predicted=accumulated["shown_predicted"],
        shown_heatmaps_true=accumulated.get("shown_true"),
        deletion_drop=float(accumulated["deletion"].mean()),
        random_drop=float(accumulated["random"].mean()),
        deletion_fraction=deletion_fraction,
        deletion_fill=deletion_fill,
        device=str(device),
        n_images=len(images),
    )


class _HeatmapBatches:
    """Grad-CAM of one model layer over batches of images, gathering what the result keeps."""

    def __init__(
        self,
        model: torch.nn.Module,
        layer: torch.nn.Module,
        layer_name: str,
        size: tuple[int, int],
        as_probabilities: bool,
    ):
        self.model, self.layer_name, self.size = model, layer_name, tuple(size)
        self.cam = LayerGradCam(model, layer)
        self.as_probabilities = as_probabilities

    def predict_proba(self, batch: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            scores = self.model(batch)
        return scores if self.as_probabilities else torch.softmax(scores, dim=1)

    def heatmaps(self, batch: torch.Tensor, classes: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Raw maps (n, h, w) at the layer's resolution, and maps upsampled to the image and scaled to [0, 1]."""
        raw = self.cam.attribute(batch, target=classes, relu_attributions=True).detach()
        if raw.dim() != 4:
            raise InvalidInputError(
                f"Target layer {self.layer_name!r} outputs shape {tuple(raw.shape)}; Grad-CAM needs "
                "a (batch, channels, height, width) feature map, as a Conv2d layer gives."
            )
        upsampled = LayerAttribution.interpolate(raw, self.size, interpolate_mode="bilinear")[:, 0]
        peak = upsampled.flatten(1).amax(dim=1).clamp_min(1e-12)
        return raw[:, 0], upsampled / peak[:, None, None]

    def run(
        self,
        images: np.ndarray,
        positions: np.ndarray,
        probabilities: np.ndarray,
        labels: np.ndarray | None,
        batch_size: int,
        device: torch.device,
        shown: np.ndarray,
        fraction: float,
        fill: Fill,
        generator: torch.Generator,
    ) -> dict[str, np.ndarray]:
        n_classes = probabilities.shape[1]
        gathered: dict[str, list] = {
            "raw_predicted": [],
            "raw_true": [],
            "shown_predicted": [],
            "shown_true": [],
            "deletion": [],
            "random": [],
        }
        class_sums = np.zeros((n_classes, *self.size))
        class_counts = np.zeros(n_classes, dtype=int)
        starts = range(0, len(positions), batch_size)
        for start in tqdm(starts, desc="Grad-CAM", unit="batch", disable=None, leave=False):
            chosen = positions[start : start + batch_size]
            batch = torch.from_numpy(images[chosen]).to(device)
            predicted = torch.from_numpy(probabilities[chosen].argmax(axis=1)).to(device)
            raw, scaled = self.heatmaps(batch, predicted)
            gathered["raw_predicted"].append(raw.cpu().numpy())
            is_shown = np.isin(chosen, shown)
            gathered["shown_predicted"].append(scaled.cpu().numpy()[is_shown])
            by_class, per_class = predicted, scaled
            if labels is not None:
                true = torch.from_numpy(labels[chosen]).to(device)
                raw_true, scaled_true = self.heatmaps(batch, true)
                gathered["raw_true"].append(raw_true.cpu().numpy())
                gathered["shown_true"].append(scaled_true.cpu().numpy()[is_shown])
                by_class, per_class = true, scaled_true
            np.add.at(class_sums, by_class.cpu().numpy(), per_class.cpu().numpy())
            class_counts += np.bincount(by_class.cpu().numpy(), minlength=n_classes)
            deletion, random = deletion_drops(self.predict_proba, batch, scaled, predicted, fraction, fill, generator)
            gathered["deletion"].append(deletion.cpu().numpy())
            gathered["random"].append(random.cpu().numpy())
        result = {key: np.concatenate(parts).astype(np.float32) for key, parts in gathered.items() if parts}
        result.update(class_sums=class_sums, class_counts=class_counts)
        return result


def find_target_layer(model: torch.nn.Module, name: str | None, example: torch.Tensor) -> tuple[str, torch.nn.Module]:
    """The layer named ``name``, or the last ``Conv2d`` that a forward pass of ``example`` runs."""
    modules = dict(model.named_modules())
    convolutions = [key for key, module in modules.items() if isinstance(module, torch.nn.Conv2d)]
    if name is not None and (not name or name not in modules):
        raise InvalidInputError(
            f"The model has no layer named {name!r}; its Conv2d layers are: {', '.join(convolutions) or 'none'}."
        )
    if name is None and not convolutions:
        raise InvalidInputError(
            "The model has no Conv2d layer; name the layer to explain with target_layer (config gradcam.target_layer)."
        )
    candidates = [name] if name is not None else convolutions
    ran: list[str] = []
    hooks = [modules[key].register_forward_hook(lambda *_, key=key: ran.append(key)) for key in candidates]
    try:
        _forward(model, example)
    finally:
        for hook in hooks:
            hook.remove()
    if not ran:
        raise InvalidInputError(
            f"The forward pass never calls layer {candidates[-1]!r}, so Grad-CAM cannot read it "
            "(a model saved with serialization_format='pt2' has no callable layers: log it with "
            "'pickle')."
        )
    logger.info("Grad-CAM target layer: %s.", ran[-1])
    return ran[-1], modules[ran[-1]]


def check_images(model: torch.nn.Module, images: Any) -> np.ndarray:
    """The images as a float32 array (n, C, H, W) with the channel count of the model's first Conv2d."""
    if isinstance(images, torch.Tensor):
        images = images.detach().cpu().numpy()
    try:
        array = np.asarray(images, dtype=np.float32)
    except (TypeError, ValueError) as err:
        raise InvalidInputError(f"Images must be a numeric array or Tensor; converting them failed: {err}.") from err
    channels = next((m.in_channels for m in model.modules() if isinstance(m, torch.nn.Conv2d)), None)
    if array.ndim == 3 and channels in (1, None):
        array = array[:, None]
    if array.ndim != 4:
        raise InvalidInputError(
            f"Images must have shape (n, channels, height, width) or (n, height, width) for one "
            f"channel, not {array.shape}."
        )
    if len(array) == 0:
        raise InvalidInputError("There are no images to explain.")
    if channels is not None and array.shape[1] != channels:
        if array.shape[3] != channels:
            raise InvalidInputError(
                f"The model takes images with {channels} channel(s), but the images have shape "
                f"{array.shape} (expected (n, {channels}, height, width))."
            )
        logger.info("Images of shape %s read as channels-last and moved to (n, channels, height, width).", array.shape)
        array = array.transpose(0, 3, 1, 2)
    if not np.isfinite(array).all():
        raise InvalidInputError("The images contain NaN or infinite values.")
    return np.ascontiguousarray(array)


def check_labels(labels: Any, n_images: int, n_classes: int) -> np.ndarray | None:
    """Labels as int64 class indices in [0, n_classes), one per image (None stays None)."""
    if labels is None:
        return None
    array = np.asarray(labels.detach().cpu() if isinstance(labels, torch.Tensor) else labels)
    if array.ndim != 1 or len(array) != n_images:
        raise InvalidInputError(f"Labels must be one class index per image ({n_images}), not shape {array.shape}.")
    if not np.issubdtype(array.dtype, np.number) or not np.all(np.mod(array, 1) == 0):
        raise InvalidInputError("Labels must be integer class indices.")
    if array.min() < 0 or array.max() >= n_classes:
        raise InvalidInputError(
            f"Labels must be class indices from 0 to {n_classes - 1} (the model has {n_classes} "
            f"outputs); found {int(array.min())} to {int(array.max())}."
        )
    return array.astype(np.int64)


def choose_shown(
    predicted: np.ndarray, labels: np.ndarray | None, max_images: int, rng: np.random.RandomState
) -> np.ndarray:
    """Images drawn in the grids, sorted: misclassified ones first, the rest balanced over classes (seeded).

    Misclassified images take up to half of the slots (at least one, and more when there are too
    few correct ones); the correct ones are taken round-robin over the classes in a seeded order.
    """
    wrong = np.flatnonzero(predicted != labels) if labels is not None else np.array([], dtype=int)
    right = np.setdiff1d(np.arange(len(predicted)), wrong)
    n_wrong = min(len(wrong), max(max_images // 2, max_images - len(right), 1))
    chosen_wrong = rng.permutation(wrong)[:n_wrong]
    order = rng.permutation(right)
    groups = (labels if labels is not None else predicted)[order]
    ranks = np.zeros(len(order), dtype=int)
    seen: dict[int, int] = {}
    for i, group in enumerate(groups):
        ranks[i] = seen.get(int(group), 0)
        seen[int(group)] = ranks[i] + 1
    chosen_right = order[np.argsort(ranks, kind="stable")][: max_images - n_wrong]
    return np.sort(np.concatenate([chosen_wrong, chosen_right]).astype(int))


def _sample(n_images: int, shown: np.ndarray, max_rows: int, rng: np.random.RandomState) -> np.ndarray:
    """Sorted positions to explain: every shown image, and a seeded sample of the others up to ``max_rows``."""
    others = np.setdiff1d(np.arange(n_images), shown)
    extra = rng.permutation(others)[: max(max_rows - len(shown), 0)]
    return np.sort(np.concatenate([shown, extra]).astype(int))


def _scores(model: torch.nn.Module, images: np.ndarray, batch_size: int, device: torch.device) -> np.ndarray:
    """The model's outputs (n, n_classes) for every image, in batches."""
    outputs = []
    for start in range(0, len(images), batch_size):
        outputs.append(_forward(model, torch.from_numpy(images[start : start + batch_size]).to(device)))
    scores = np.concatenate(outputs).astype(np.float64)
    if scores.ndim != 2 or scores.shape[1] < 2:
        raise InvalidInputError(
            f"Grad-CAM explains classifiers returning one score per class (n, n_classes >= 2); "
            f"the model returns shape {scores.shape}."
        )
    return scores


def _forward(model: torch.nn.Module, batch: torch.Tensor) -> np.ndarray:
    try:
        with torch.no_grad():
            output = model(batch)
    except RuntimeError as err:
        message = str(err).splitlines()[0]
        raise InvalidInputError(f"The model cannot take images of shape {tuple(batch.shape[1:])}: {message}.") from err
    if not isinstance(output, torch.Tensor):
        raise InvalidInputError(
            f"Grad-CAM needs a model returning one Tensor of class scores, not {type(output).__name__}."
        )
    return output.detach().cpu().numpy()


def _are_probabilities(scores: np.ndarray) -> bool:
    """Whether the outputs already are probabilities (non-negative rows summing to 1); else they are logits."""
    return bool((scores >= 0).all() and np.allclose(scores.sum(axis=1), 1.0, atol=1e-4))


def _class_names(class_names: Sequence[str] | None, n_classes: int) -> list[str]:
    if class_names is None:
        return [str(k) for k in range(n_classes)]
    names = [str(name) for name in class_names]
    if len(names) != n_classes:
        raise InvalidInputError(f"class_names has {len(names)} names but the model has {n_classes} outputs.")
    return names


def _device(model: torch.nn.Module) -> torch.device:
    parameter = next(model.parameters(), None)
    return parameter.device if parameter is not None else torch.device("cpu")


@contextlib.contextmanager
def _eval_mode(model: torch.nn.Module) -> Iterator[None]:
    """The model in eval mode (dropout off, batch-norm statistics frozen), restored afterwards."""
    was_training = model.training
    model.eval()
    try:
        yield
    finally:
        model.train(was_training)

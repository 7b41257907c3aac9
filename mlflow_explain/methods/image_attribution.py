"""The plumbing every image attribution method shares, in the style of pytorch-grad-cam's ``base_cam.py`` (no MLflow).

:func:`prepare_images` checks the images and labels, scores them once in batches on the model's
device and chooses the explained and the shown images (seeded). :class:`ImageAttribution` runs a
method over those images in batches, in eval mode: upsampling and scaling of the maps, the
true-class maps of the misclassified images, the per-class means and the faithfulness test. A
method is a subclass in a file of its own that overrides one step, :meth:`ImageAttribution.attribute`
(the raw maps of a batch for given target classes), reads its options in
:meth:`ImageAttribution.from_config`, and may prepare itself in
:meth:`ImageAttribution.setup` and add settings to its result in :meth:`ImageAttribution.details`.
"""

from __future__ import annotations

import abc
import dataclasses
import functools
import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from ..errors import InvalidInputError
from ..results import ImageAttributionResult
from .faithfulness import Fill, deletion_drops
from .torch_modules import evaluation_mode, module_device

if TYPE_CHECKING:
    from ..config import ExplainConfig

logger = logging.getLogger(__name__)


@dataclasses.dataclass
class PreparedImages:
    """Checked images (n, C, H, W) with their class probabilities, labels, names, and which to explain and show."""

    model: torch.nn.Module
    images: np.ndarray
    probabilities: np.ndarray
    as_probabilities: bool  # the model returns probabilities (else logits, turned into them by softmax)
    labels: np.ndarray | None
    class_names: list[str]
    shown: np.ndarray  # sorted positions drawn in the grids
    positions: np.ndarray  # sorted positions explained, holding the shown ones
    device: torch.device


def prepare_images(
    model: torch.nn.Module,
    images: Any,
    labels: Any = None,
    class_names: Sequence[str] | None = None,
    *,
    max_images: int = 32,
    max_rows: int = 1000,
    batch_size: int = 64,
    random_state: int = 0,
) -> PreparedImages:
    """Check the images and labels, score every image, and choose the explained and shown ones.

    Parameters
    ----------
    model : torch.nn.Module
        A classifier returning one score (logit or probability) per class; it stays on its device.
    images : array or Tensor of shape (n, C, H, W), (n, H, W, C), or (n, H, W) for one channel
        Validation images, prepared as the model expects them.
    labels : array-like of shape (n,), default=None
        True class indices.
    class_names : sequence of str, default=None
        One name per class (default: the class indices).
    max_images : int, default=32
        Images drawn in the grids: misclassified ones always among them, the rest a seeded
        choice balanced over classes.
    max_rows : int, default=1000
        Images explained at most (a seeded sample beyond that, always holding the shown ones).
    batch_size : int, default=64
        Images per forward pass.
    random_state : int, default=0
        Seed of the shown images and of the sample.

    Returns
    -------
    PreparedImages

    Raises
    ------
    InvalidInputError
        On images of the wrong shape or channel count, labels out of range, or a model that is not
        a classifier.
    """
    if not isinstance(model, torch.nn.Module):
        raise InvalidInputError(
            f"Image attributions explain PyTorch models (torch.nn.Module), not {type(model).__name__}."
        )
    device = module_device(model)
    images = check_images(model, images)
    rng = np.random.RandomState(random_state)
    with evaluation_mode(model):
        scores = _scores(model, images, batch_size, device)
    as_probabilities = _are_probabilities(scores)
    probabilities = scores if as_probabilities else torch.softmax(torch.from_numpy(scores), dim=1).numpy()
    n_classes = probabilities.shape[1]
    labels = check_labels(labels, len(images), n_classes)
    names = _class_names(class_names, n_classes)
    shown = choose_shown(probabilities.argmax(axis=1), labels, max_images, rng)
    positions = _sample(len(images), shown, max_rows, rng)
    return PreparedImages(model, images, probabilities, as_probabilities, labels, names, shown, positions, device)


def attribute_images(
    method: ImageAttribution,
    images: Any,
    labels: Any = None,
    class_names: Sequence[str] | None = None,
    *,
    max_images: int = 32,
    max_rows: int = 1000,
    batch_size: int = 64,
    deletion_fraction: float = 0.2,
    deletion_fill: Fill = "zero",
    random_state: int = 0,
) -> ImageAttributionResult:
    """:func:`prepare_images`, then ``method.explain``: the arguments of both (``random_state`` seeds every choice)."""
    prepared = prepare_images(
        method.model,
        images,
        labels,
        class_names,
        max_images=max_images,
        max_rows=max_rows,
        batch_size=batch_size,
        random_state=random_state,
    )
    return method.explain(
        prepared,
        batch_size=batch_size,
        deletion_fraction=deletion_fraction,
        deletion_fill=deletion_fill,
        random_state=random_state,
    )


ATTRIBUTIONS: dict[str, type[ImageAttribution]] = {}  # each image attribution method's class, by method name


class ImageAttribution(abc.ABC):
    """One attribution method of an image classifier; subclasses override :meth:`attribute`.

    A subclass names its ``result_type``, which registers it in :data:`ATTRIBUTIONS` under that
    result's method name: the image engine finds the method ``<name>`` there once ``methods/<name>.py``
    is imported.

    Parameters
    ----------
    model : torch.nn.Module
        The classifier the method explains.
    """

    result_type: ClassVar[type[ImageAttributionResult]]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "result_type" in cls.__dict__:
            ATTRIBUTIONS[cls.result_type.method] = cls

    def __init__(self, model: torch.nn.Module):
        self.model = model

    @property
    def title(self) -> str:
        """The method's name for people ("Grad-CAM")."""
        return self.result_type.title

    @classmethod
    @abc.abstractmethod
    def from_config(
        cls, model: torch.nn.Module, config: ExplainConfig, target_layer: str | None = None
    ) -> ImageAttribution:
        """The method with its options from ``config``; ``target_layer`` is the caller's choice for layer methods."""

    def setup(self, example: torch.Tensor) -> None:  # noqa: B027 (a hook: most methods need no preparation)
        """Prepare for a run, given one image (1, C, H, W) on the model's device (called in eval mode)."""

    @abc.abstractmethod
    def attribute(self, batch: torch.Tensor, classes: torch.Tensor) -> torch.Tensor:
        """Raw maps (n, h, w) of the classes' scores, higher where the pixel matters more.

        Non-negative, or signed for a method whose result type says so (``signed_maps``: negative
        where the pixel speaks against the class); the positive part ranks the pixels (the raw
        arrays, the class means and the faithfulness test), the figures show the signed map.

        Parameters
        ----------
        batch : Tensor of shape (n, C, H, W)
            Images on the model's device.
        classes : Tensor of shape (n,)
            The class each image's map is for.
        """

    def details(self) -> dict[str, Any]:
        """The method's own fields of its result (settings, checks), after a run."""
        return {}

    def explain(
        self,
        prepared: PreparedImages,
        *,
        batch_size: int = 64,
        deletion_fraction: float = 0.2,
        deletion_fill: Fill = "zero",
        random_state: int = 0,
    ) -> ImageAttributionResult:
        """Maps of the predicted and the true class of the prepared images, their class means and faithfulness.

        Parameters
        ----------
        prepared : PreparedImages
            From :func:`prepare_images`.
        batch_size : int, default=64
            Images per call of :meth:`attribute`.
        deletion_fraction : float, default=0.2
            Share of the pixels removed by the faithfulness test.
        deletion_fill : {"zero", "blur"}, default="zero"
            What the removed pixels become.
        random_state : int, default=0
            Seed of the random pixels of the faithfulness test (the same pixels for every method).

        Returns
        -------
        ImageAttributionResult
            Of the method's own type.
        """
        generator = torch.Generator().manual_seed(random_state)
        with evaluation_mode(self.model):
            self.setup(torch.from_numpy(prepared.images[:1]).to(prepared.device))
            gathered = self._run(prepared, batch_size, deletion_fraction, deletion_fill, generator)
        counts = gathered["class_counts"]
        with np.errstate(invalid="ignore", divide="ignore"):
            means = gathered["class_sums"] / counts[:, None, None]
        positions = prepared.positions
        return self.result_type(
            class_names=prepared.class_names,
            positions=positions,
            probabilities=prepared.probabilities[positions],
            labels=None if prepared.labels is None else prepared.labels[positions],
            heatmaps_predicted=gathered["raw_predicted"],
            heatmaps_true=gathered.get("raw_true"),
            mean_heatmaps=means,
            class_counts=counts,
            shown=np.searchsorted(positions, prepared.shown),
            shown_images=prepared.images[prepared.shown],
            shown_heatmaps_predicted=gathered["shown_predicted"],
            shown_heatmaps_true=gathered.get("shown_true"),
            deletion_drop=float(gathered["deletion"].mean()),
            random_drop=float(gathered["random"].mean()),
            deletion_fraction=deletion_fraction,
            deletion_fill=deletion_fill,
            device=str(prepared.device),
            n_images=len(prepared.images),
            **self.details(),
        )

    def _run(
        self, prepared: PreparedImages, batch_size: int, fraction: float, fill: Fill, generator: torch.Generator
    ) -> dict[str, np.ndarray]:
        """The method over the explained images in batches, gathering what the result keeps."""
        size = prepared.images.shape[-2:]
        n_classes = prepared.probabilities.shape[1]
        gathered: dict[str, list] = {key: [] for key in ("raw_predicted", "raw_true", "shown_predicted", "shown_true")}
        gathered |= {"deletion": [], "random": []}
        class_sums = np.zeros((n_classes, *size))
        class_counts = np.zeros(n_classes, dtype=int)
        positions = prepared.positions
        predict_proba = functools.partial(probabilities, self.model, prepared.as_probabilities)
        starts = range(0, len(positions), batch_size)
        for start in tqdm(starts, desc=self.title, unit="batch", disable=None, leave=False):
            chosen = positions[start : start + batch_size]
            batch = torch.from_numpy(prepared.images[chosen]).to(prepared.device)
            predicted = prepared.probabilities[chosen].argmax(axis=1)
            raw, scaled, drawn = self._maps(batch, torch.from_numpy(predicted).to(prepared.device))
            is_shown = np.isin(chosen, prepared.shown)
            gathered["raw_predicted"].append(raw.cpu().numpy())
            gathered["shown_predicted"].append(drawn.cpu().numpy()[is_shown])
            by_class, per_class = predicted, scaled
            if prepared.labels is not None:
                by_class = prepared.labels[chosen]
                maps_true = self._true_class_maps(batch, (raw, scaled, drawn), predicted, by_class)
                raw_true, scaled_true, drawn_true = maps_true
                gathered["raw_true"].append(raw_true.cpu().numpy())
                gathered["shown_true"].append(drawn_true.cpu().numpy()[is_shown])
                per_class = scaled_true
            np.add.at(class_sums, by_class, per_class.cpu().numpy())
            class_counts += np.bincount(by_class, minlength=n_classes)
            deletion, random = deletion_drops(
                predict_proba, batch, scaled, torch.from_numpy(predicted).to(prepared.device), fraction, fill, generator
            )
            gathered["deletion"].append(deletion.cpu().numpy())
            gathered["random"].append(random.cpu().numpy())
        result = {key: np.concatenate(parts).astype(np.float32) for key, parts in gathered.items() if parts}
        result.update(class_sums=class_sums, class_counts=class_counts)
        return result

    def _maps(self, batch: torch.Tensor, classes: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """A batch's raw maps (positive part), those scaled to the image and its peak, and the drawn ones.

        The drawn maps are the method's own maps (signed or not) at the image size, divided by their
        largest magnitude: in [0, 1], or [-1, 1] for a signed method.
        """
        size = tuple(batch.shape[-2:])
        maps = self.attribute(batch, classes).detach()
        raw = maps.clamp_min(0)
        return raw, scaled_to_image(raw, size), scaled_to_image(maps, size)

    def _true_class_maps(
        self, batch: torch.Tensor, maps: tuple[torch.Tensor, ...], predicted: np.ndarray, true: np.ndarray
    ) -> tuple[torch.Tensor, ...]:
        """:meth:`_maps` of the true class: the predicted class's where they agree, anew for the misclassified."""
        wrong = np.flatnonzero(predicted != true)
        maps = tuple(part.clone() for part in maps)
        if len(wrong):
            index = torch.from_numpy(wrong).to(batch.device)
            anew = self._maps(batch[index], torch.from_numpy(true[wrong]).to(batch.device))
            for part, part_anew in zip(maps, anew, strict=True):
                part[index] = part_anew
        return maps


def probabilities(model: torch.nn.Module, as_probabilities: bool, batch: torch.Tensor) -> torch.Tensor:
    """Class probabilities (n, n_classes) of a batch, without gradients (softmax of logits)."""
    with torch.no_grad():
        scores = model(batch)
    return scores if as_probabilities else torch.softmax(scores, dim=1)


def scaled_to_image(raw: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Maps (n, h, w) upsampled bilinearly to the image's (H, W) when smaller, each divided by its largest magnitude."""
    same = tuple(raw.shape[-2:]) == tuple(size)
    upsampled = raw if same else F.interpolate(raw[:, None], size, mode="bilinear")[:, 0]
    peak = upsampled.flatten(1).abs().amax(dim=1).clamp_min(1e-12)
    return upsampled / peak[:, None, None]


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


def forward(model: torch.nn.Module, batch: torch.Tensor) -> np.ndarray:
    """The model's outputs of one batch, without gradients, as an array; a failing forward is bad input."""
    try:
        with torch.no_grad():
            output = model(batch)
    except RuntimeError as err:
        message = str(err).splitlines()[0]
        raise InvalidInputError(f"The model cannot take images of shape {tuple(batch.shape[1:])}: {message}.") from err
    if not isinstance(output, torch.Tensor):
        raise InvalidInputError(
            f"Image attributions need a model returning one Tensor of class scores, not {type(output).__name__}."
        )
    return output.detach().cpu().numpy()


def _sample(n_images: int, shown: np.ndarray, max_rows: int, rng: np.random.RandomState) -> np.ndarray:
    """Sorted positions to explain: every shown image, and a seeded sample of the others up to ``max_rows``."""
    others = np.setdiff1d(np.arange(n_images), shown)
    extra = rng.permutation(others)[: max(max_rows - len(shown), 0)]
    return np.sort(np.concatenate([shown, extra]).astype(int))


def _scores(model: torch.nn.Module, images: np.ndarray, batch_size: int, device: torch.device) -> np.ndarray:
    """The model's outputs (n, n_classes) for every image, in batches."""
    outputs = []
    for start in range(0, len(images), batch_size):
        outputs.append(forward(model, torch.from_numpy(images[start : start + batch_size]).to(device)))
    scores = np.concatenate(outputs).astype(np.float64)
    if scores.ndim != 2 or scores.shape[1] < 2:
        raise InvalidInputError(
            f"Image attributions explain classifiers returning one score per class (n, n_classes >= 2); "
            f"the model returns shape {scores.shape}."
        )
    return scores


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

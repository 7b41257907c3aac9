"""Result types shared by the methods, plots, report and tracking (no computation here)."""

from __future__ import annotations

import dataclasses
import hashlib
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import numpy as np
import pandas as pd

from .keys import key_parts

TaskKind = Literal["regression", "binary", "multiclass"]

IMPORTANCE_COLUMNS = ["method", "output", "feature", "importance", "std", "rank"]


@dataclasses.dataclass(frozen=True)
class Task:
    """What the model predicts: ``kind`` and, for classifiers, the class labels in model order.

    ``class_names`` (one per class, in the same order) are what the user calls the classes when
    the labels are codes (``class_names=`` of ``explain``); empty when the labels name themselves.
    ``outputs`` names the outputs of a multi-output regressor (a 2-D target), in column order;
    empty for a single output.
    """

    kind: TaskKind
    classes: tuple = ()
    class_names: tuple = ()
    outputs: tuple = ()

    @property
    def is_classification(self) -> bool:
        return self.kind != "regression"


RESULT_TYPES: dict[str, type[MethodResult]] = {}  # every method's result type by method name, in definition order


class MethodResult:
    """What a method's result declares, so that nothing downstream needs a branch per method.

    A subclass that sets ``method`` registers itself in :data:`RESULT_TYPES`: ``method`` names the
    step that computes it, its :class:`Explanation` attribute (``explanation.<method>``), its config
    section, the ``method`` column of the importance table and its artifact folder; ``title`` is how
    figures and the report name it. The explanation's status, ``summary.json`` and the run-level
    metrics read the result through :meth:`summary` and :meth:`run_metrics`.
    """

    method: ClassVar[str]
    title: ClassVar[str]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "method" in cls.__dict__:
            RESULT_TYPES[cls.method] = cls

    def summary(self) -> dict[str, Any]:
        """The method's entry in ``summary.json``."""
        raise NotImplementedError

    def run_metrics(self) -> dict[str, float]:
        """The run-level metrics the method adds (rows used, baseline scores, checks), by metric key."""
        raise NotImplementedError


ImportanceBlock = tuple[str, list[str], np.ndarray, "np.ndarray | None"]  # output, features, importance, std

# The unit of attributions in the model output's space, in words.
OUTPUT_SPACE_WORDS = {
    "prediction": "in units of the prediction",
    "probability": "in probability",
    "margin": "in log-odds",
}


class TabularResult(MethodResult):
    """A tabular method's result: importances per feature and output, as rows of the long table.

    Metrics are ``<metric_prefix>[.<output>]/<feature>`` (and ``<metric_prefix>_std...`` with
    ``metric_std``), the output part left out for ``primary_output``; a run's primary metrics are
    read back (drift, compare) as the output ``logged_output``.
    """

    metric_prefix: ClassVar[str]
    metric_std: ClassVar[bool]
    logged_output: ClassVar[str]

    @property
    def outputs(self) -> list[str]:
        """The names of the outputs the importances are given for (scorers, classes)."""
        raise NotImplementedError

    @property
    def primary_output(self) -> str:
        """The output whose metric keys carry no output part."""
        raise NotImplementedError

    @property
    def unit_names(self) -> list[str]:
        """Every name the method reports importances for (columns, and any feature groups)."""
        raise NotImplementedError

    def importance_blocks(self, task: Task) -> list[ImportanceBlock]:
        """The method's rows of the long importance table, one block per output, float noise set to 0."""
        raise NotImplementedError

    @property
    def unit(self) -> str:
        """What one of its primary importances measures, in words (the command line's summary says it)."""
        return self.title


@dataclasses.dataclass
class PermutationResult(TabularResult):
    """Permutation importance for every scorer, as ``sklearn.inspection`` reports it.

    ``importances[scorer]`` has shape (n_features, n_repeats): baseline score minus permuted
    score; ``feature_names`` holds one name per permuted unit (a column or a feature group).
    """

    feature_names: list[str]
    scorer_names: list[str]
    baseline_scores: dict[str, float]
    importances: dict[str, np.ndarray]
    n_rows: int
    n_repeats: int
    copies_per_call: int
    n_predict_calls: int
    path: str = "model"  # where copies were evaluated: model, pipeline_transformed_once or full_pipeline
    path_reason: str = ""  # why that path (a fallback names the check that failed)

    def mean(self, scorer: str) -> np.ndarray:
        """Mean importance per feature over the repeats, float noise set to 0 (what every view shows)."""
        return denoised(self.importances[scorer].mean(axis=1), self._noise_scale(scorer))

    def std(self, scorer: str) -> np.ndarray:
        """Standard deviation per feature over the repeats, float noise set to 0."""
        return denoised(self.importances[scorer].std(axis=1), self._noise_scale(scorer))

    def _noise_scale(self, scorer: str) -> float:
        """Score differences are of numbers the size of the score: float noise is relative to it (at least 1)."""
        return max(abs(self.baseline_scores.get(scorer, 0.0)), 1.0)

    @property
    def primary_scorer(self) -> str:
        return self.scorer_names[0]

    method: ClassVar[str] = "permutation"
    title: ClassVar[str] = "Permutation importance"
    metric_prefix: ClassVar[str] = "permutation_importance"
    metric_std: ClassVar[bool] = True
    logged_output: ClassVar[str] = "primary"

    @property
    def outputs(self) -> list[str]:
        return self.scorer_names

    @property
    def primary_output(self) -> str:
        return self.primary_scorer

    @property
    def unit(self) -> str:
        return f"decrease in {self.primary_scorer} when the feature is shuffled"

    @property
    def unit_names(self) -> list[str]:
        return self.feature_names

    def importance_blocks(self, task: Task) -> list[ImportanceBlock]:
        return [(scorer, self.feature_names, self.mean(scorer), self.std(scorer)) for scorer in self.scorer_names]

    def summary(self) -> dict[str, Any]:
        return {
            "scorers": self.scorer_names,
            "baseline_scores": self.baseline_scores,
            "n_rows": self.n_rows,
            "n_repeats": self.n_repeats,
            "copies_per_predict_call": self.copies_per_call,
            "predict_calls": self.n_predict_calls,
            "path": self.path,
            "path_reason": self.path_reason,
        }

    def run_metrics(self) -> dict[str, float]:
        scorers = key_parts(self.scorer_names)
        metrics = {f"explain/baseline_score.{scorers[scorer]}": score for scorer, score in self.baseline_scores.items()}
        return metrics | {"explain/rows_permutation": self.n_rows}


@dataclasses.dataclass
class ShapResult(TabularResult):
    """SHAP values of the explained rows, per raw feature and model output.

    ``values`` has shape (n_rows, n_features, n_outputs) and ``base_values`` (n_rows, n_outputs),
    so ``values.sum(axis=1) + base_values`` is the model output in ``output_space``
    ("prediction" for regressors, "probability" or "margin" (log-odds) for classifiers).
    ``row_positions`` index the rows the values were computed on; ``source_rows`` are the same
    rows' positions in the data the user passed (before any sampling of it) and ``index_labels``
    their index labels when that data was a DataFrame.
    """

    values: np.ndarray
    base_values: np.ndarray
    data: pd.DataFrame
    feature_names: list[str]
    output_names: list[str]
    output_space: Literal["prediction", "probability", "margin"]
    algorithm: str
    reason: str
    row_positions: np.ndarray
    n_background: int
    max_additivity_error: float | None = None
    local_positions: np.ndarray = dataclasses.field(default_factory=lambda: np.array([], dtype=int))
    source_rows: np.ndarray | None = None  # None: the same as row_positions
    index_labels: np.ndarray | None = None

    def user_row(self, row: int) -> int:
        """The position, in the data the user passed, of explained row ``row``."""
        return int((self.row_positions if self.source_rows is None else self.source_rows)[row])

    def user_label(self, row: int) -> object | None:
        """The index label of explained row ``row`` in the user's DataFrame (None without one)."""
        return None if self.index_labels is None else self.index_labels[row]

    def explained_output(self, row: int) -> int:
        """The output a local explanation of ``row`` shows: the predicted class, or the prediction."""
        if len(self.output_names) == 1:
            return 0
        return int(np.argmax(self.values[row].sum(axis=0) + self.base_values[row]))

    def mean_abs(self) -> np.ndarray:
        """Mean absolute value per (feature, output), float noise set to 0: shape (n_features, n_outputs).

        What the metrics, the bar chart, the beeswarm's and the dependence plots' order all read.
        """
        mean_abs = self.rows_mean_abs()
        scale = max(float(np.abs(self.base_values).max(initial=0.0)), float(mean_abs.max(initial=0.0)), 1.0)
        return denoised(mean_abs, scale)

    def rows_mean_abs(self) -> np.ndarray:
        """Mean absolute value per (feature, output) over the explained rows, before :meth:`mean_abs`'s noise rule
        (an engine that keeps only a sample of the rows' values gives the mean of all of them instead)."""
        return np.abs(self.values).mean(axis=0)

    @property
    def n_explained(self) -> int:
        """Rows explained (more than ``values`` holds when an engine keeps only a sample of them)."""
        return len(self.row_positions)

    method: ClassVar[str] = "shap"
    title: ClassVar[str] = "SHAP values"
    metric_prefix: ClassVar[str] = "shap_mean_abs"
    metric_std: ClassVar[bool] = False
    logged_output: ClassVar[str] = "all"

    @property
    def outputs(self) -> list[str]:
        return self.output_names

    @property
    def primary_output(self) -> str:
        return "all"

    @property
    def unit_names(self) -> list[str]:
        return self.feature_names

    @property
    def unit(self) -> str:
        return f"mean |SHAP value|, {OUTPUT_SPACE_WORDS[self.output_space]}"

    def importance_blocks(self, task: Task) -> list[ImportanceBlock]:
        """Mean |SHAP| over all outputs (``all``: the positive class alone for a binary task), and per class or
        per output of a multi-output regressor."""
        mean_abs = self.mean_abs()
        if task.kind == "binary":  # the two outputs mirror each other: the positive class says it all
            blocks = [("all", self.feature_names, mean_abs[:, -1], None)]
        else:
            blocks = [("all", self.feature_names, mean_abs.mean(axis=1), None)]
        if task.kind == "multiclass" or task.outputs:  # per class, or per output of a multi-output regressor
            for k, output in enumerate(self.output_names):
                blocks.append((output, self.feature_names, mean_abs[:, k], None))
        return blocks

    def summary(self) -> dict[str, Any]:
        return {
            "algorithm": self.algorithm,
            "reason": self.reason,
            "output_space": self.output_space,
            "outputs": self.output_names,
            "n_rows": self.n_explained,
            "n_background": self.n_background,
            "max_additivity_error": self.max_additivity_error,
        }

    def run_metrics(self) -> dict[str, float]:
        metrics: dict[str, float] = {"explain/rows_shap": self.n_explained}
        if self.max_additivity_error is not None:
            metrics["explain/shap_max_additivity_error"] = self.max_additivity_error
        return metrics


@dataclasses.dataclass
class TokenResult(TabularResult):
    """Token attributions of a text classifier or regressor: each token's share of the model output, per text.

    ``tokens[i]`` are text ``i``'s tokens in reading order (words for scikit-learn vectorizers, the
    tokenizer's pieces for torch models) and ``values[i]`` their attributions, shape
    (n_tokens_i, n_outputs), so ``values[i].sum(0) + base_values[i]`` is the model output for text
    ``i`` in ``output_space`` (for Integrated Gradients: the output at the baseline input, up to
    ``max_additivity_error``). Outputs are one per class, as for :class:`ShapResult` (a binary model
    explained in one margin gets the negative class as its mirror image), or "prediction".
    ``row_positions`` are the texts' positions in the data the user passed and ``index_labels``
    their index labels there; ``column`` names the text column of a DataFrame (None when the texts
    were passed themselves).

    Importances (``tokens_mean_abs[.<class>]/<token>``) are the mean over the texts of |a token's
    summed attribution in a text| (0 in a text without it), for the ``top_k`` tokens of each block
    only: a vocabulary has thousands of tokens and the metrics stay bounded.
    """

    texts: list[str]
    tokens: list[list[str]]
    values: list[np.ndarray]
    base_values: np.ndarray
    output_names: list[str]
    output_space: Literal["prediction", "probability", "margin"]
    algorithm: str
    reason: str
    row_positions: np.ndarray
    column: str | None
    max_additivity_error: float | None = None
    index_labels: np.ndarray | None = None
    top_k: int = 20
    n_texts_passed: int | None = None  # texts there were before tokens.max_texts (None: all were explained)

    method: ClassVar[str] = "tokens"
    title: ClassVar[str] = "Token attributions"
    metric_prefix: ClassVar[str] = "tokens_mean_abs"
    metric_std: ClassVar[bool] = False
    logged_output: ClassVar[str] = "all"

    @property
    def outputs(self) -> list[str]:
        return self.output_names

    @property
    def primary_output(self) -> str:
        return "all"

    @property
    def unit(self) -> str:
        return f"mean |attribution| per token, {OUTPUT_SPACE_WORDS[self.output_space]}"

    @property
    def unit_names(self) -> list[str]:
        """The tokens that have importances (the top ``top_k`` of some block), most important first."""
        mean_abs = self.token_means(absolute=True)
        names: dict[str, None] = {}
        for _, tokens, _, _ in self._blocks(mean_abs):
            names.update(dict.fromkeys(tokens))
        return list(names)

    def output_values(self, text: int) -> np.ndarray:
        """The model output for text ``text`` that its attributions add up to: (n_outputs,)."""
        return self.values[text].sum(axis=0) + self.base_values[text]

    def explained_output(self, text: int) -> int:
        """The output a text's highlighted view shows: the predicted class (largest output), or the prediction."""
        return 0 if len(self.output_names) == 1 else int(np.argmax(self.output_values(text)))

    def token_means(self, absolute: bool = False) -> pd.DataFrame:
        """Each token's mean attribution over the texts, per output: a frame indexed by token, one column per output.

        A token's attribution in a text is the sum over its occurrences there (0 in a text without it);
        ``absolute`` takes its absolute value before the mean (the importance), else the signed mean
        (the top tokens per class: positive pushes towards the class). Float noise is set to 0 (:func:`denoised`).
        """
        n_texts = max(len(self.values), 1)
        per_text = self.token_frame().groupby(["text", "token"], sort=False)[self.output_names].sum()
        if absolute:
            per_text = per_text.abs()
        means = per_text.groupby(level="token", sort=False).sum() / n_texts
        scale = max(float(np.abs(self.base_values).max(initial=0.0)), 1.0)
        return pd.DataFrame(denoised(means.to_numpy(), scale), index=means.index, columns=means.columns)

    def token_frame(self) -> pd.DataFrame:
        """Every token occurrence as a row: text (its position among the explained texts), position, token, then
        one column per output with its attribution."""
        counts = [len(tokens) for tokens in self.tokens]
        values = np.concatenate(self.values) if counts and sum(counts) else np.zeros((0, len(self.output_names)))
        frame = pd.DataFrame(values, columns=self.output_names)
        frame.insert(0, "token", [token for tokens in self.tokens for token in tokens])
        frame.insert(0, "position", np.concatenate([np.arange(n) for n in counts]) if counts else [])
        frame.insert(0, "text", np.repeat(np.arange(len(counts)), counts))
        return frame

    def importance_blocks(self, task: Task) -> list[ImportanceBlock]:
        """Mean |attribution| of the top ``top_k`` tokens: over all outputs (``all``: the positive class alone for a
        binary task), and per class of a multiclass task."""
        return self._blocks(self.token_means(absolute=True), task.kind)

    def _blocks(self, mean_abs: pd.DataFrame, kind: TaskKind | None = None) -> list[ImportanceBlock]:
        """The importance blocks of ``mean_abs`` (:meth:`token_means`); without ``kind``, the task is told by the
        number of outputs (two: binary)."""
        if kind is None:
            kind = "binary" if len(self.output_names) == 2 else "multiclass" if self.output_names[2:] else "regression"
        overall = mean_abs.iloc[:, -1] if kind == "binary" else mean_abs.mean(axis=1)
        blocks = [("all", overall)]
        if kind == "multiclass":
            blocks += [(output, mean_abs[output]) for output in self.output_names]
        top = []
        for output, importance in blocks:
            kept = importance.sort_values(ascending=False, kind="stable").head(self.top_k)
            top.append((output, [str(token) for token in kept.index], kept.to_numpy(), None))
        return top

    def summary(self) -> dict[str, Any]:
        return {
            "algorithm": self.algorithm,
            "reason": self.reason,
            "output_space": self.output_space,
            "outputs": self.output_names,
            "column": self.column,
            "n_texts": len(self.texts),
            "n_texts_passed": len(self.texts) if self.n_texts_passed is None else self.n_texts_passed,
            "n_tokens": int(sum(len(tokens) for tokens in self.tokens)),
            "n_distinct_tokens": int(len({token for tokens in self.tokens for token in tokens})),
            "top_k": self.top_k,
            "max_additivity_error": self.max_additivity_error,
        }

    def run_metrics(self) -> dict[str, float]:
        metrics: dict[str, float] = {"explain/rows_tokens": len(self.texts)}
        if self.max_additivity_error is not None:
            metrics["explain/tokens_max_additivity_error"] = self.max_additivity_error
        return metrics


@dataclasses.dataclass(kw_only=True)
class ImageAttributionResult(MethodResult):
    """One attribution method's heatmaps of an image classifier on validation images (a subclass per method).

    The ``positions`` (indices into the images passed) were explained: their class
    ``probabilities`` (n, n_classes), ``labels`` (n,) when given, and the method's raw maps
    (non-negative, at the method's resolution h x w) for the predicted class and, with labels, for
    the true class. ``shown`` indexes the images drawn in the grids; their images and heatmaps
    upsampled to the image size and divided by their largest magnitude are kept for plotting: in
    [0, 1], or in [-1, 1] for a method with ``signed_maps`` (negative against the class). ``mean_heatmaps``
    (n_classes, H, W) is the mean scaled heatmap per class (of the true class over the images
    labelled with it; of the predicted class without labels), NaN for a class with no image.
    ``deletion_drop`` and ``random_drop`` are the mean drops of the predicted class's probability
    when the most highlighted or a random ``deletion_fraction`` of the pixels are replaced
    (``deletion_fill``: a blurred copy of the image, or zeros); ``faithfulness`` is their difference.

    A subclass names its method (``method``: the metric prefix, artifact folder and Explanation
    attribute; ``title``: how figures and the report name it), adds the method's own settings as
    fields (:meth:`details`) and describes its raw arrays (``arrays``, file name -> meaning). The
    class computing it is the :class:`~mlflow_explain.methods.image_attribution.ImageAttribution`
    in ``methods/<method>.py`` whose ``result_type`` it is.
    """

    arrays: ClassVar[dict[str, str]]
    signed_maps: ClassVar[bool] = False  # the shown maps are signed (drawn red for the class, blue against it)

    class_names: list[str]
    positions: np.ndarray
    probabilities: np.ndarray
    labels: np.ndarray | None
    heatmaps_predicted: np.ndarray
    heatmaps_true: np.ndarray | None
    mean_heatmaps: np.ndarray
    class_counts: np.ndarray
    shown: np.ndarray
    shown_images: np.ndarray
    shown_heatmaps_predicted: np.ndarray
    shown_heatmaps_true: np.ndarray | None
    deletion_drop: float
    random_drop: float
    deletion_fraction: float
    deletion_fill: str
    device: str
    n_images: int

    @property
    def faithfulness(self) -> float:
        """``deletion_drop - random_drop``: the one number that compares methods and runs (larger: more faithful)."""
        return self.deletion_drop - self.random_drop

    @property
    def predicted(self) -> np.ndarray:
        """The predicted class index of every explained image."""
        return self.probabilities.argmax(axis=1)

    @property
    def misclassified(self) -> np.ndarray:
        """Boolean mask of the explained images whose prediction is wrong (all False without labels)."""
        if self.labels is None:
            return np.zeros(len(self.positions), dtype=bool)
        return self.predicted != self.labels

    @property
    def setting(self) -> str:
        """The method's settings in a few words, for figure titles ("layer features.3")."""
        raise NotImplementedError

    def details(self) -> dict[str, Any]:
        """The fields the method adds to the shared ones (its settings and checks), by name."""
        shared = {field.name for field in dataclasses.fields(ImageAttributionResult)}
        return {field.name: getattr(self, field.name) for field in dataclasses.fields(self) if field.name not in shared}

    def summary(self) -> dict[str, Any]:
        return {
            **self.details(),
            "classes": self.class_names,
            "device": self.device,
            "n_images": self.n_images,
            "n_explained": len(self.positions),
            "n_shown": len(self.shown),
            "n_misclassified": int(self.misclassified.sum()),
            "deletion_fraction": self.deletion_fraction,
            "deletion_fill": self.deletion_fill,
            "deletion_drop": self.deletion_drop,
            "random_drop": self.random_drop,
            "faithfulness": self.faithfulness,
            "arrays": self.arrays,
        }

    def run_metrics(self) -> dict[str, float]:
        return {
            f"{self.method}/deletion_drop": self.deletion_drop,
            f"{self.method}/random_drop": self.random_drop,
            f"{self.method}/faithfulness": self.faithfulness,
            f"explain/rows_{self.method}": len(self.positions),
        }


_IMAGE_ARRAYS = {
    "positions.npy": "index of each explained image among the images passed (n,)",
    "probabilities.npy": "class probabilities of the explained images (n, n_classes)",
    "labels.npy": "true class index of the explained images (n,), when labels were given",
}


@dataclasses.dataclass(kw_only=True)
class GradcamResult(ImageAttributionResult):
    """Grad-CAM heatmaps (Captum's ``LayerGradCam``) of ``target_layer``: raw maps after ReLU at its resolution.

    A transformer layer's patch tokens are read as their grid, so its resolution is the patch grid's.
    """

    method: ClassVar[str] = "gradcam"
    title: ClassVar[str] = "Grad-CAM"
    arrays: ClassVar[dict[str, str]] = {
        **_IMAGE_ARRAYS,
        "heatmaps_predicted.npy": "raw Grad-CAM of the predicted class, ReLU applied, at the target layer's resolution "
        "(n, h, w)",
        "heatmaps_true.npy": "raw Grad-CAM of the true class (n, h, w), when labels were given",
        "mean_heatmaps.npy": "mean Grad-CAM per class at the image resolution, each map scaled to [0, 1] "
        "(n_classes, H, W)",
    }

    target_layer: str
    target_layer_reason: str = "named"  # why this layer: "named" by the caller, else the rule that chose it
    layer_layout: str = ""  # how its output was read as a map ("a 10 x 10 feature map", "196 patch tokens ...")

    @property
    def setting(self) -> str:
        return f"layer {self.target_layer}"


@dataclasses.dataclass(kw_only=True)
class IntegratedGradientsResult(ImageAttributionResult):
    """Integrated Gradients (Captum) from a ``baseline`` image in ``n_steps``; maps at the image resolution.

    A raw map is the positive part of the attributions summed over the channels of each pixel: the
    evidence for the class that removing the pixel (setting it to the baseline) takes away. The
    shown maps keep the sign (``signed_maps``), as shap's image plot draws them.
    Completeness (attributions summing to F(image) - F(baseline), F the class's score) is checked
    on every attribution: ``max_convergence_delta`` is the largest gap of one image, and
    ``relative_convergence_delta`` all gaps over all |F(image) - F(baseline)|, summed over the images.
    """

    method: ClassVar[str] = "integrated_gradients"
    title: ClassVar[str] = "Integrated Gradients"
    signed_maps: ClassVar[bool] = True
    arrays: ClassVar[dict[str, str]] = {
        **_IMAGE_ARRAYS,
        "heatmaps_predicted.npy": "Integrated Gradients of the predicted class's score, summed over channels, "
        "positive part, at the image resolution (n, H, W)",
        "heatmaps_true.npy": "the same for the true class (n, H, W), when labels were given",
        "mean_heatmaps.npy": "mean map per class at the image resolution, each map scaled to [0, 1] (n_classes, H, W)",
    }

    n_steps: int
    baseline: str
    max_convergence_delta: float
    relative_convergence_delta: float

    @property
    def setting(self) -> str:
        return f"{self.n_steps} steps from a {self.baseline} baseline"


def tabular_result_types() -> dict[str, type[TabularResult]]:
    """Every tabular method's result type by method name, in registration order."""
    return {name: kind for name, kind in RESULT_TYPES.items() if issubclass(kind, TabularResult)}


def image_result_types() -> dict[str, type[ImageAttributionResult]]:
    """Every image attribution method's result type by method name, in registration (and report) order."""
    return {name: kind for name, kind in RESULT_TYPES.items() if issubclass(kind, ImageAttributionResult)}


@dataclasses.dataclass(frozen=True)
class Finding:
    """One diagnostic: what kind, how serious, which features, the figure behind it, and why it matters."""

    kind: Literal["target_leakage", "dominant_feature", "noise_features", "method_disagreement", "correlated_features"]
    severity: Literal["info", "warning"]
    features: tuple[str, ...]
    value: float
    message: str


@dataclasses.dataclass
class RunImportances:
    """One logged run's importance table, with what identifies the run in plots and tables."""

    run_id: str
    run_name: str
    experiment_name: str
    start_time: int
    table: pd.DataFrame
    order_value: float | None = None  # a metric to order runs by, instead of start time

    @property
    def label(self) -> str:
        return f"{self.run_name or self.run_id[:8]} ({self.experiment_name})"


@dataclasses.dataclass(frozen=True)
class BaselineCandidate:
    """A run considered as a baseline, as its tags describe it (None: a tag the run lacks)."""

    label: str
    family: str | None
    feature_set: str | None


@dataclasses.dataclass
class Drift:
    """How an explanation's ranking moved against its baseline run's ranking."""

    baseline_run_id: str
    baseline_label: str
    method: str
    ndcg: float
    spearman: float
    top_k_overlap: float
    top_k: int
    threshold: float
    moved: pd.DataFrame  # feature, baseline_rank, rank, shift; largest shift first

    @property
    def alert(self) -> bool:
        return bool(self.ndcg < self.threshold)


@dataclasses.dataclass
class Comparison:
    """Importances of several runs side by side, their pairwise stability, and what was left out."""

    runs: list[RunImportances]
    importances: pd.DataFrame
    stability: pd.DataFrame
    top_k: int
    notes: list[str]
    run_id: str | None = None  # the comparison run it was logged to

    def methods(self) -> list[str]:
        return sorted(self.importances["method"].unique())

    def matrix(self, method: str) -> pd.DataFrame:
        """Importance as runs (rows by run id, in order) x features (columns, most important overall first)."""
        rows = self.importances[self.importances["method"] == method]
        matrix = rows.pivot_table(index="run_id", columns="feature", values="importance", sort=False)
        matrix = matrix.reindex([run.run_id for run in self.runs]).dropna(how="all")
        return matrix[matrix.mean().sort_values(ascending=False).index]


@dataclasses.dataclass
class Explanation:
    """Everything one explanation produced: each method's result, the long importance table, timings, problems.

    ``results`` holds each method's result by method name (a method that failed or did not run has
    none); ``explanation.<method>`` reads it, None when absent, for every registered method
    (:data:`RESULT_TYPES`): ``explanation.permutation``, ``explanation.shap``, ``explanation.gradcam``...
    """

    task: Task
    feature_names: list[str]
    n_rows: int
    config: dict
    inputs: Literal["rows", "images", "texts"] = "rows"  # what the n_rows explained are (the report names them so)
    results: dict[str, MethodResult] = dataclasses.field(default_factory=dict)
    n_rows_passed: int | None = None  # rows the user passed, before validation.max_rows (None: n_rows)
    timings: dict[str, float] = dataclasses.field(default_factory=dict)
    versions: dict[str, str] = dataclasses.field(default_factory=dict)
    warnings: list[str] = dataclasses.field(default_factory=list)
    errors: dict[str, str] = dataclasses.field(default_factory=dict)
    tracebacks: dict[str, str] = dataclasses.field(default_factory=dict)  # by failed step, as in errors
    model_type: str = ""
    model_family: str = ""  # what drift compares within (models.model_family)
    model_details: dict | None = None  # what adapting the model decided (a PyTorch module's task and outputs)
    diagnostics: list[Finding] = dataclasses.field(default_factory=list)
    drift: Drift | None = None
    no_baseline_reason: str | None = None  # why there is no drift when the comparison found no baseline run

    if TYPE_CHECKING:  # the registered methods read as attributes (see __getattr__)
        permutation: PermutationResult | None
        shap: ShapResult | None
        tokens: TokenResult | None
        gradcam: GradcamResult | None
        integrated_gradients: IntegratedGradientsResult | None

    def __getattr__(self, name: str) -> Any:
        """``explanation.<method>``: the result of a registered method, or None when it has none."""
        if name in RESULT_TYPES:
            return self.__dict__.get("results", {}).get(name)
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    @property
    def status(self) -> Literal["ok", "partial", "failed"]:
        if not self.errors:
            return "ok"
        return "partial" if self.results else "failed"

    @property
    def tabular_results(self) -> list[TabularResult]:
        """The tabular methods' results computed, in registration order."""
        return [result for name in tabular_result_types() if (result := self.results.get(name)) is not None]

    @property
    def image_results(self) -> list[ImageAttributionResult]:
        """The image attribution results computed, in registration order."""
        return [result for name in image_result_types() if (result := self.results.get(name)) is not None]

    @property
    def reported_features(self) -> list[str]:
        """Every name reported as a feature: the columns, then any other unit a method reports (feature groups)."""
        names = list(self.feature_names)
        for result in self.tabular_results:
            names += [name for name in result.unit_names if name not in names]
        return names

    @property
    def feature_set(self) -> str:
        """A short digest of the feature names, in any order: runs with the same features have the same one."""
        joined = "\x1f".join(sorted(self.feature_names))
        return hashlib.sha256(joined.encode("utf-8")).hexdigest()[:16]

    @property
    def importances(self) -> pd.DataFrame:
        """The long table (method, output, feature, importance, std, rank) of every tabular method.

        Built anew on each access (one frame from plain arrays): read it once and pass it on.
        """
        blocks = [
            (result.method, *block) for result in self.tabular_results for block in result.importance_blocks(self.task)
        ]
        if not blocks:
            return pd.DataFrame(columns=IMPORTANCE_COLUMNS)
        return _long_table(blocks)


def primary_ranking(importances: pd.DataFrame, result: TabularResult) -> pd.DataFrame:
    """The rows of ``importances`` (``Explanation.importances``) for ``result``'s primary output, rank 1 first."""
    rows = importances[(importances["method"] == result.method) & (importances["output"] == result.primary_output)]
    return rows.sort_values("rank")


FLOAT_NOISE = 1e-12  # relative to the scale of the numbers an importance is computed from


def denoised(values: np.ndarray, scale: float) -> np.ndarray:
    """``values`` with those within float noise of zero (``FLOAT_NOISE * scale``) set to exactly 0.

    A feature the model ignores gets an importance such as -2.2e-17 from rounding (a score minus
    the same score summed in another order); it is 0. The one noise rule of the package, applied
    where a result computes the numbers every view reads (``PermutationResult.mean`` and ``std``,
    ``ShapResult.mean_abs``, ``TokenResult.token_means``), so the table, metrics, report, charts and
    counts never show one value two ways (0 in one, -0.0000 or -2.2e-17 in another).
    """
    values = np.asarray(values, dtype=float)
    return np.where(np.abs(values) <= FLOAT_NOISE * scale, 0.0, values)


def _long_table(blocks: list[tuple[str, str, list[str], np.ndarray, np.ndarray | None]]) -> pd.DataFrame:
    """One frame of (method, output, features, importance, std) blocks, ranked within each block.

    Rank 1 is the largest importance; ties keep their order (pandas' ``rank(method="first")``).
    """
    methods, outputs, features, importances, stds, ranks = [], [], [], [], [], []
    for method, output, names, importance, std in blocks:
        importance = np.asarray(importance, dtype=float)
        rank = np.empty(len(importance), dtype=np.int64)
        rank[np.argsort(-importance, kind="stable")] = np.arange(1, len(importance) + 1)
        methods += [method] * len(names)
        outputs += [output] * len(names)
        features += list(names)
        importances.append(importance)
        stds.append(np.full(len(importance), np.nan) if std is None else np.asarray(std, dtype=float))
        ranks.append(rank)
    return pd.DataFrame(
        {
            "method": methods,
            "output": outputs,
            "feature": features,
            "importance": np.concatenate(importances),
            "std": np.concatenate(stds),
            "rank": np.concatenate(ranks),
        }
    )

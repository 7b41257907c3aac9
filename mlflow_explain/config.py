"""The one configuration object: pydantic models, YAML loading, merging and validation.

Each option is declared once, below: its type, its default, its constraint and its description.
``mlflow_explain/default_config.yaml`` (shipped in the package) and ``configs/default.yaml`` are
that declaration written out as commented YAML by :func:`defaults_yaml`; ``tests/test_config.py``
fails when either file differs from it (rewrite both with ``python configs/write_default.py``).
"""

from __future__ import annotations

import functools
import textwrap
import types
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Annotated, Any, Literal, Union, get_args, get_origin

import annotated_types
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from .errors import ConfigError

DEFAULT_CONFIG_PATH = Path(__file__).with_name("default_config.yaml")
_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml when built with it: the same YAML, faster

Seed = Annotated[int, Field(ge=0)]  # numpy's RandomState takes 0 .. 2**32 - 1
Scorer = str | Callable[..., Any]
_SECONDS = "a positive number of seconds or null"


def _option(default: Any, description: str, expects: str | None = None, **constraints: Any) -> Any:
    """A field: its default, constraints, the YAML comment, and (where the types do not say it) what it expects."""
    extra = {"expects": expects} if expects else None
    return Field(default, description=description, json_schema_extra=extra, **constraints)


class _Section(BaseModel):
    """Unknown keys rejected; strict types (an int is a float, a bool is not an int, a string is not a number)."""

    model_config = ConfigDict(extra="forbid", strict=True)


class ValidationConfig(_Section):
    """``validation``: where the validation rows come from and how many are used."""

    path: str | None = _option(None, "CSV or Parquet file to read the validation rows from when none are passed")
    target: str | None = _option(None, "name of the target column inside the validation data")
    max_rows: int = _option(10000, "validation rows used at most (a seeded sample beyond that)", gt=0)
    random_state: Seed = _option(0, "seed of that sample")


class PermutationConfig(_Section):
    """``permutation``: permutation importance."""

    enabled: bool = _option(True, "compute permutation importance")
    n_repeats: int = _option(5, "times each feature is shuffled", gt=0)
    scoring: Scorer | list[Scorer] | tuple[Scorer, ...] | dict[str, Scorer] | None = _option(
        None,
        "sklearn scorer name, list of names, or null (r2 / accuracy)",
        expects="null, a scorer name or callable, or a list or mapping of them",
    )
    random_state: Seed = _option(0, "seed of the shuffles (same results as sklearn's permutation_importance)")
    max_samples: Annotated[float, Field(gt=0, le=1)] | Annotated[int, Field(ge=1)] = _option(
        1.0,
        "rows per repeat: a fraction (float) or a count (int), as in sklearn",
        expects="a fraction in (0, 1] or a row count >= 1",
    )
    feature_groups: dict = _option({}, "name -> list of columns permuted together and reported as one feature")
    n_jobs: int = _option(1, "parallel workers for the permuted copies (-1: all cores)")
    memory_budget_mb: float = _option(
        512.0, "memory allowed for the permuted copies evaluated in one predict call", gt=0
    )
    split_pipeline: bool = _option(
        True, "Pipelines with verified row-wise, per-column preprocessing: transform once (same result)"
    )
    budget_s: float | None = _option(
        None,
        "time budget in seconds: over it (estimated from a timed predict), fewer rows, then repeats",
        expects=_SECONDS,
        gt=0,
    )


class ShapConfig(_Section):
    """``shap``: SHAP values, their explainer and the plots drawn from them."""

    enabled: bool = _option(True, "compute SHAP values")
    algorithm: Literal["auto", "tree", "linear", "deep", "permutation", "exact"] = _option(
        "auto",
        "auto (deep for PyTorch models and scikit-learn MLPs, else tree, then linear, then model-agnostic: exact "
        "up to exact_max_features raw columns, else permutation), tree, linear, deep (DeepLIFT-SHAP), permutation "
        "or exact",
    )
    max_rows: int = _option(2000, "rows explained at most (a seeded sample beyond that)", gt=0)
    background_rows: int = _option(100, "background rows for the linear, deep and model-agnostic explainers", ge=0)
    permutation_max_rows: int = _option(
        200, "rows explained at most by the slow model-agnostic explainers (exact, permutation)", gt=0
    )
    exact_max_features: int = _option(
        10,
        "model-agnostic SHAP (a model, or a whole Pipeline, masked on its raw columns): exact Shapley values "
        "(shap's ExactExplainer, 2^n coalitions per row) up to this many raw columns, above it the sampled "
        "PermutationExplainer seeded by random_state",
        ge=0,
        le=20,
    )
    dependence_top_k: int = _option(5, "dependence plots drawn for this many top features", ge=0)
    local_rows: int = _option(3, "rows given a waterfall plot (seeded choice); the first also a force plot", ge=0)
    random_state: Seed = _option(0, "seed of the row and background samples and of the permutation explainer")
    check_additivity: bool = _option(True, "check values + base value = model output and record the largest error")
    budget_s: float | None = _option(
        None,
        "time budget in seconds: over it (estimated from a timed small batch), fewer rows",
        expects=_SECONDS,
        gt=0,
    )
    n_jobs: int = _option(
        -1,
        "worker processes for TreeSHAP of scikit-learn tree ensembles, which shap computes on one core "
        "(-1: all cores; the same values as one)",
    )


class TokensConfig(_Section):
    """``tokens``: token attributions of models that read text, word by word."""

    enabled: bool = _option(
        True,
        "attribute the outputs of models that read text (a Pipeline starting with a TfidfVectorizer, "
        "CountVectorizer or HashingVectorizer, alone or on a ColumnTransformer's text column; a PyTorch text "
        "classifier given to explain_text, options in section torch_text) to each word",
    )
    algorithm: Literal["auto", "linear", "masking"] = _option(
        "auto",
        "auto (linear for a linear model right on the vectorizer's output with a word analyzer, else masking), "
        "linear (exact: coef x feature value, in the margin) or masking (model-agnostic: sampled Shapley values "
        "of each text's distinct words, removed and put back in seeded orders)",
    )
    max_texts: int = _option(200, "texts explained at most (a seeded sample beyond that)", gt=0)
    top_k: int = _option(
        20,
        "tokens given metrics tokens_mean_abs[.<class>]/<token> (mean |attribution| over the texts): the top k "
        "overall and per class, so that a vocabulary of thousands of words logs a bounded number",
        gt=0,
    )
    n_permutations: int = _option(
        10,
        "word orders sampled per text by masking (antithetic pairs, so rounded up to even); a text costs about "
        "n_permutations x its distinct words predictions",
        gt=0,
    )
    shown_texts: int = _option(
        10, "texts shown with their words highlighted in the report (every explained text in tokens/texts.html)", ge=0
    )
    random_state: Seed = _option(0, "seed of the sample of texts and of the masking orders")
    budget_s: float | None = _option(
        None,
        "time budget in seconds: over it (estimated from a few timed texts), fewer texts",
        expects=_SECONDS,
        gt=0,
    )


class BudgetConfig(_Section):
    """``budget``: one time budget for the whole tabular explanation, planned before the work starts."""

    autolog_s: float | None = _option(
        60.0,
        "seconds the explanation autolog runs after each fit may take (probes, permutation importance, SHAP): "
        "planned from timed probes, then fewer SHAP rows, permutation rows and repeats; null: no budget",
        expects=_SECONDS,
        gt=0,
    )
    explain_s: float | None = _option(
        None,
        "the same budget for explain(), the CLI and the evaluator; null: none (permutation.budget_s and "
        "shap.budget_s still apply)",
        expects=_SECONDS,
        gt=0,
    )


ImageMethod = Literal["gradcam", "integrated_gradients"]  # a new method: its name here and its file in methods/


class GradcamConfig(_Section):
    """``gradcam``: attributions of image classifiers (explain_images), their shared options and faithfulness test."""

    enabled: bool = _option(True, "explain images with the methods below")
    methods: list[ImageMethod] = _option(
        ["gradcam"],
        "attribution methods, each with its metrics <method>/deletion_drop, files and report section: gradcam, "
        "integrated_gradients (options in section integrated_gradients; about n_steps times Grad-CAM's cost)",
        expects="a non-empty list of the image methods 'gradcam', 'integrated_gradients'",
        min_length=1,
    )
    target_layer: str | None = _option(
        None,
        "Grad-CAM's layer, as named by model.named_modules(); null: a vision transformer's last block's first "
        "norm (as pytorch-grad-cam recommends), else the last Conv2d run",
    )
    token_grid: Annotated[list[Annotated[int, Field(gt=0)]], Field(min_length=2, max_length=2)] | None = _option(
        None,
        "patch grid [rows, columns] of a transformer layer's tokens (the tokens before the patches, class and "
        "distillation, dropped); null: inferred from the token count and the image size",
        expects="null or two positive ints [rows, columns]",
    )
    max_images: int = _option(
        32, "images drawn in the grids (misclassified ones always among them, seeded choice)", gt=0
    )
    max_rows: int = _option(
        1000, "images explained at most for the mean heatmaps and faithfulness (seeded sample)", gt=0
    )
    batch_size: int = _option(64, "images per forward/backward pass, on the model's device", gt=0)
    deletion_fraction: float = _option(
        0.2,
        "share of pixels removed by the faithfulness test (<method>/deletion_drop)",
        expects="a fraction in (0, 1)",
        gt=0,
        lt=1,
    )
    deletion_fill: Literal["blur", "zero"] = _option(
        "zero", "removed pixels become: zero (as the RISE deletion test), or blur (a Gaussian-blurred copy)"
    )
    random_state: Seed = _option(0, "seed of the shown images, the sample and the random pixels")


class IntegratedGradientsConfig(_Section):
    """``integrated_gradients``: Integrated Gradients of images, when gradcam.methods names it."""

    n_steps: int = _option(
        32, "points of the path integral from the baseline to the image (Gauss-Legendre); cost grows with it", gt=0
    )
    baseline: Literal["zero", "blur"] = _option(
        "zero", "where the path starts: zero (an all-zero input: black for pixels in [0, 1]), or blur (a blurred copy)"
    )
    internal_batch_size: int | None = _option(
        None,
        "images x steps per forward/backward pass (null: gradcam.batch_size)",
        expects="a positive int or null",
        gt=0,
    )


class TorchConfig(_Section):
    """``torch``: PyTorch modules on tabular rows (a ``torch.nn.Module`` taking a float tensor (n, features))."""

    task: Literal["auto", "classification", "regression"] = _option(
        "auto",
        "auto: k outputs and class labels make a classifier; one output, a binary target a binary classifier "
        "(else a regressor); classification or regression to say so",
    )
    output: Literal["auto", "logits", "probabilities"] = _option(
        "auto",
        "what a classifier's outputs are; auto: probabilities when every validation row's outputs are in [0, 1] "
        "and sum to 1, else logits (one output: a logit unless set to probabilities)",
    )
    classes: list[str | int] | None = _option(
        None,
        "class labels of the outputs in order (a binary logit: [negative, positive]); null: 0..k-1 for integer "
        "labels, else the target's labels sorted",
    )
    batch_size: int = _option(4096, "rows per forward pass of the module", gt=0)
    device: str | None = _option(
        None, "device the predictions run on; null: the module's own; e.g. cpu or cuda:0 (on a copy of the module)"
    )


class TorchTextConfig(_Section):
    """``torch_text``: token attributions of PyTorch text classifiers (explain_text), by layer Integrated Gradients.

    ``tokens.enabled``, ``max_texts``, ``top_k``, ``shown_texts`` and ``random_state`` apply to them too.
    """

    max_length: int = _option(256, "tokens kept per text (longer texts are cut, with a warning)", gt=0)
    n_steps: int = _option(
        100,
        "points of the path integral from the baseline text (Gauss-Legendre); cost grows with it, and completeness "
        "(max_additivity_error, warned over 1%) with it",
        gt=0,
    )
    baseline_token_id: int | None = _option(
        None,
        "the token each shown token becomes in the baseline text (special tokens and padding stay); null: the "
        "padding token",
        expects="a token id (int >= 0) or null",
        ge=0,
    )
    pad_token_id: int | None = _option(
        None,
        "the padding token's id; null: the tokenizer's, else a [PAD] or <pad> of the vocabulary",
        expects="a token id (int >= 0) or null",
        ge=0,
    )
    embedding_layer: str | None = _option(
        None,
        "the layer turning ids into vectors, as named by model.named_modules(); null: get_input_embeddings() "
        "(Hugging Face), else the first nn.Embedding",
    )
    batch_size: int = _option(16, "texts per attribution call, on the model's device", gt=0)
    internal_batch_size: int | None = _option(
        None,
        "texts x steps per forward/backward pass (null: batch_size x n_steps)",
        expects="a positive int or null",
        gt=0,
    )


class LoggingConfig(_Section):
    """``logging``: the artifact folder, the report and the spool."""

    artifact_dir: str = _option("explain", "artifact folder of the run that receives every file")
    report: bool = _option(True, "write report.html (one self-contained page)")
    spool_dir: str | None = _option(
        None,
        "folder keeping explanations MLflow could not take (server down) for `mlflow-explain sync`; "
        "null: such a failure is recorded (status partial) and logged, and training goes on",
    )


class CompareConfig(_Section):
    """``compare``: drift against a baseline run."""

    enabled: bool = _option(True, "compare each new explanation with a baseline run and log the drift")
    baseline: str = _option(
        "previous", "previous (explained run in the experiment), best:<metric> (highest), or a run id"
    )
    baseline_match: Literal["family", "any"] = _option(
        "family",
        "family: the baseline is a run of the same model family (the final estimator's class, or the boosting "
        "library) on the same features, else no drift is measured and the report says why; any: any explained run",
    )
    top_k: int = _option(10, "features counted by top-k overlap and nDCG@k", gt=0)
    drift_threshold: float = _option(0.9, "nDCG@k below this tags the run mlflow_explain.drift=alert", ge=0, le=1)


class EvaluateConfig(_Section):
    """``evaluate``: the ``mlflow.models.evaluate`` plugin."""

    run_by_default: bool = _option(
        False, 'run inside mlflow.models.evaluate even when evaluators= does not name "explain"'
    )


class SparkConfig(_Section):
    """``spark``: the session of the Spark engine."""

    master: str = _option(
        "local[*]", "Spark master of the session the CLI builds (an existing session is used as it is)"
    )
    app_name: str = _option("mlflow_explain", "application name of that session")
    conf: dict = _option({}, "extra Spark settings of that session, e.g. {spark.driver.memory: 4g}")
    row_id: str | None = _option(
        None, "column of the Spark rows naming each row (never a feature), for autolog, the CLI and the evaluator"
    )


class ServingConfig(_Section):
    """``serving``: the explainer model that ``mlflow models serve`` answers with SHAP values."""

    log_explainer: bool = _option(
        False,
        "also log the explained model as an explainer model (mlflow_explain.log_explainer, background: the "
        "validation rows) into the run",
    )
    name: str = _option(
        "explainer", "name of that logged model (MLflow's rule: none of / : . % \" ')", pattern=r"^[^/:.%\"']+$"
    )


class DiagnosticsConfig(_Section):
    """``diagnostics``: the findings computed after the methods (summary.json and the report)."""

    leakage: bool = _option(
        True,
        "look for target leakage: small decision trees on the top features' clusters, scored out of fold "
        "(about ten small fits on the validation rows)",
    )


class SweepsConfig(_Section):
    """``sweeps``: what autolog explains in nested runs (Optuna or Hyperopt trials, ``start_run(nested=True)``)."""

    nested: Literal["light", "full", "none"] = _option(
        "light",
        "fits in a nested run: light (permutation importance only, on at most nested_max_rows validation rows; "
        "no SHAP, leakage check or drift: cheap, and the same rows in every trial), full (explained as any run), "
        "none (not explained)",
    )
    nested_max_rows: int = _option(
        300, "validation rows of a light explanation at most (a seeded sample: validation.random_state)", gt=0
    )


def _is_section(annotation: Any) -> bool:
    return isinstance(annotation, type) and issubclass(annotation, _Section)


def _section(model: type[_Section], description: str) -> Any:
    return Field(default_factory=model, description=description)


class ExplainConfig(_Section):
    """Every option of mlflow_explain; build it with :func:`load_config`."""

    validation: ValidationConfig = _section(ValidationConfig, "the validation rows the methods run on")
    permutation: PermutationConfig = _section(PermutationConfig, "permutation importance")
    shap: ShapConfig = _section(ShapConfig, "SHAP values and their plots")
    tokens: TokensConfig = _section(TokensConfig, "token attributions of models that read text, word by word")
    budget: BudgetConfig = _section(BudgetConfig, "the time budget of a whole tabular explanation")
    gradcam: GradcamConfig = _section(
        GradcamConfig, "attributions of PyTorch image classifiers (mlflow_explain.explain_images)"
    )
    integrated_gradients: IntegratedGradientsConfig = _section(
        IntegratedGradientsConfig, "Integrated Gradients of images (gradcam.methods: [..., integrated_gradients])"
    )
    torch: TorchConfig = _section(TorchConfig, "PyTorch modules on tabular rows: their task, outputs and device")
    torch_text: TorchTextConfig = _section(
        TorchTextConfig,
        "token attributions of PyTorch text classifiers (mlflow_explain.explain_text); tokens.max_texts, top_k and "
        "the views' options apply",
    )
    logging: LoggingConfig = _section(LoggingConfig, "what is written into the MLflow run")
    compare: CompareConfig = _section(CompareConfig, "explanation drift against a baseline run")
    diagnostics: DiagnosticsConfig = _section(DiagnosticsConfig, "findings: target leakage, noise, disagreement")
    evaluate: EvaluateConfig = _section(EvaluateConfig, "the mlflow.models.evaluate plugin")
    spark: SparkConfig = _section(
        SparkConfig, "the Spark engine: mlflow_explain.spark.explain and `mlflow-explain explain --spark`"
    )
    serving: ServingConfig = _section(ServingConfig, "explanations at serving time (mlflow_explain.log_explainer)")
    sweeps: SweepsConfig = _section(
        SweepsConfig, "autolog in nested runs: each trial of a sweep explained light, in full, or not at all"
    )
    on_error: Literal["warn", "raise"] = _option(
        "warn", "warn: a failing method is recorded and the rest is kept; raise: re-raise"
    )

    def to_dict(self) -> dict:
        """The config as plain nested data (callables shown by name), for summary.json."""
        return _plain(self.model_dump())


_SECTIONS = frozenset(name for name, field in ExplainConfig.model_fields.items() if _is_section(field.annotation))

ConfigSource = str | Path | Mapping | ExplainConfig | None


def load_config(source: ConfigSource = None, overrides: Sequence[str] | Mapping | None = None) -> ExplainConfig:
    """Build the effective config: defaults, then ``source``, then ``overrides``.

    Parameters
    ----------
    source : None, path, mapping or ExplainConfig
        A YAML file, a nested dict of the same keys, or a ready config.
    overrides : list of "section.key=value" strings, or a nested dict, optional
        Applied last; values in strings are parsed as YAML (``n_repeats=10`` is an int).

    Returns
    -------
    ExplainConfig
        The validated config (a new object, also when ``source`` is one).

    Raises
    ------
    ConfigError
        On an unknown key, a value of the wrong type or out of range, or an unreadable file.
    """
    if isinstance(source, ExplainConfig):
        merged = source.model_dump()
    elif isinstance(source, (str, Path)):
        merged = _merge(_defaults(), _read_yaml(Path(source)))
    elif isinstance(source, Mapping):
        merged = _merge(_defaults(), source)
    elif source is None:
        merged = _defaults()
    else:
        raise ConfigError(f"config must be a YAML path, a dict or an ExplainConfig, not {type(source).__name__}.")
    if overrides:
        merged = _merge(merged, overrides if isinstance(overrides, Mapping) else _parse_overrides(overrides))
    try:
        return ExplainConfig.model_validate(merged)
    except ValidationError as err:
        raise ConfigError(_message(err)) from err


@functools.lru_cache(maxsize=1)
def _defaults() -> dict:
    """The defaults as nested dicts, built once per process (shared: merged into copies, never changed)."""
    return ExplainConfig().model_dump()


def _merge(base: dict, update: Mapping) -> dict:
    """``update`` over ``base``: sections key by key, every other value (feature_groups, spark.conf) whole."""
    merged = dict(base)
    for key, value in update.items():
        if key in _SECTIONS and isinstance(value, Mapping) and isinstance(base.get(key), Mapping):
            merged[key] = {**base[key], **value}
        else:
            merged[key] = value
    return merged


def _read_yaml(path: Path) -> dict:
    try:
        loaded = yaml.load(path.read_text(encoding="utf-8"), Loader=_YAML_LOADER)
    except OSError as err:
        raise ConfigError(f"Cannot read config file {path}: {err.strerror}.") from err
    except yaml.YAMLError as err:
        raise ConfigError(f"Config file {path} is not valid YAML: {err}.") from err
    if loaded is None:
        return {}
    if not isinstance(loaded, dict):
        raise ConfigError(f"Config file {path} must hold a mapping of sections, not {type(loaded).__name__}.")
    return loaded


def _parse_overrides(items: Sequence[str]) -> dict:
    """Turn ``["shap.max_rows=500"]`` into ``{"shap": {"max_rows": 500}}``."""
    result: dict = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"Override {item!r} must look like section.key=value.")
        node = result
        *parents, leaf = key.strip().split(".")
        for part in parents:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(f"Override {item!r} sets a key inside {part!r}, which an earlier override set.")
        try:
            node[leaf] = yaml.load(raw, Loader=_YAML_LOADER) if raw.strip() else None
        except yaml.YAMLError as err:
            raise ConfigError(f"Override {item!r} does not hold a valid YAML value ({err.problem}).") from err
    return result


# --- pydantic's errors as one sentence naming the key ---------------------------------------------------------

_RANGE_ERRORS = frozenset({"greater_than", "greater_than_equal", "less_than", "less_than_equal"})
_UNKNOWN_ERRORS = frozenset({"extra_forbidden", "invalid_key"})  # a key not declared; a key that is not a string


def _message(err: ValidationError) -> str:
    """One sentence for a ValidationError: every unknown key, else the first key with a bad value."""
    errors = err.errors()
    unknown = [".".join(map(str, error["loc"])) for error in errors if error["type"] in _UNKNOWN_ERRORS]
    if unknown:
        return f"Unknown config key(s): {', '.join(unknown)}."
    first = errors[0]
    key = _field_key(first["loc"])
    name = ".".join(key)
    if len(key) == 1 and key[0] in _SECTIONS:
        return f"Config section {name!r} must be a mapping, not {first['input']!r}."
    field = _field(key)
    failed = {error["type"] for error in errors if _field_key(error["loc"]) == key}
    expects = (field.json_schema_extra or {}).get("expects")
    if expects is None:
        expects = _range(field.metadata) if failed & _RANGE_ERRORS else _describe(field.annotation)
    return f"Config key {name!r} must be {expects}, not {first['input']!r}."


def _field_key(loc: tuple) -> tuple[str, ...]:
    """The option a pydantic error location points into: (section, key) or (top-level key,)."""
    return tuple(map(str, loc[:2] if loc[0] in _SECTIONS and len(loc) > 1 else loc[:1]))


def _field(key: tuple[str, ...]) -> Any:
    model: type[BaseModel] = ExplainConfig
    for part in key[:-1]:
        model = model.model_fields[part].annotation
    return model.model_fields[key[-1]]


def _range(metadata: list) -> str:
    """A field's bounds in words: "positive", "0 or more", "in [0, 1]"."""
    low = next(((m.gt, "(") for m in metadata if isinstance(m, annotated_types.Gt)), None)
    low = low or next(((m.ge, "[") for m in metadata if isinstance(m, annotated_types.Ge)), None)
    high = next(((m.lt, ")") for m in metadata if isinstance(m, annotated_types.Lt)), None)
    high = high or next(((m.le, "]") for m in metadata if isinstance(m, annotated_types.Le)), None)
    if low and high:
        return f"in {low[1]}{low[0]}, {high[0]}{high[1]}"
    if low:
        return "positive" if low == (0, "(") else f"{low[0]} or more" if low[1] == "[" else f"more than {low[0]}"
    return f"less than {high[0]}" if high[1] == ")" else f"{high[0]} or less"


def _describe(annotation: Any) -> str:
    """A type in words, for "must be ...": "an int", "a number or null", "one of 'auto', 'tree'"."""
    origin = get_origin(annotation)
    if origin is Annotated:
        return _describe(get_args(annotation)[0])
    if origin in (Union, types.UnionType):
        return " or ".join(_describe(option) for option in get_args(annotation))
    if origin is Literal:
        return "one of " + ", ".join(repr(option) for option in get_args(annotation))
    words = {int: "an int", float: "a number", bool: "true or false", str: "a string", dict: "a mapping"}
    return "null" if annotation is type(None) else words.get(annotation) or f"a {annotation.__name__}"


def _plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(key): _plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    if callable(value):
        return getattr(value, "__name__", repr(value))
    return value


# --- the defaults written out as commented YAML -------------------------------------------------------------

_HEADER = """\
# mlflow_explain configuration: every option with its default.
# A user's YAML file, a dict passed in code (config={"permutation": {"n_repeats": 10}})
# or `--set permutation.n_repeats=10` on the CLI is merged over this file; every key is
# optional and an unknown key is an error.
# Generated from mlflow_explain/config.py by `python configs/write_default.py`: edit the models, not this file.
"""
_COMMENT_COLUMN, _WIDTH = 24, 120


def defaults_yaml() -> str:
    """The defaults as YAML, each option followed by its description as a comment.

    Returns
    -------
    str
        The text of ``mlflow_explain/default_config.yaml`` and ``configs/default.yaml``.
    """
    lines = _HEADER.splitlines()
    for name, field in ExplainConfig.model_fields.items():
        if _is_section(field.annotation):
            lines += ["", *_commented(f"{name}:", field.description)]
            lines += [
                line
                for key, option in field.annotation.model_fields.items()
                for line in _commented(f"  {key}: {_scalar(option.default)}", option.description)
            ]
        else:
            lines += ["", *_commented(f"{name}: {_scalar(field.default)}", field.description)]
    return "\n".join(lines) + "\n"


def _commented(text: str, description: str | None) -> list[str]:
    """``text`` with ``description`` as a comment beside it, wrapped to the page width under the first line."""
    if not description:
        raise ValueError(f"Config option {text.split(':')[0].strip()!r} has no description.")
    column = max(_COMMENT_COLUMN, len(text) + 2)
    wrapped = textwrap.wrap(description, _WIDTH - column - 2, break_on_hyphens=False) or [""]
    return [f"{text:<{column}}# {wrapped[0]}", *(f"{'':<{column}}# {line}" for line in wrapped[1:])]


def _scalar(value: Any) -> str:
    """One value in YAML's flow style: null, true, 1.0, {}, local[*]."""
    return yaml.safe_dump(value, default_flow_style=True, width=1000).removesuffix("\n...\n").strip()

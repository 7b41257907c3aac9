"""The one configuration object: typed sections, YAML loading, merging and validation."""

from __future__ import annotations

import copy
import dataclasses
import functools
import types
import typing
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal, Union

import yaml

from .errors import ConfigError

DEFAULT_CONFIG_PATH = Path(__file__).with_name("default_config.yaml")


@dataclasses.dataclass
class ValidationConfig:
    path: str | None
    target: str | None
    max_rows: int
    random_state: int


@dataclasses.dataclass
class PermutationConfig:
    enabled: bool
    n_repeats: int
    scoring: Any  # None, a scorer name, a callable, or a list/dict of them
    random_state: int
    max_samples: float | int
    feature_groups: dict
    n_jobs: int
    memory_budget_mb: float
    split_pipeline: bool
    budget_s: float | None


@dataclasses.dataclass
class ShapConfig:
    enabled: bool
    algorithm: Literal["auto", "tree", "linear", "permutation"]
    max_rows: int
    background_rows: int
    permutation_max_rows: int
    dependence_top_k: int
    local_rows: int
    random_state: int
    check_additivity: bool
    budget_s: float | None


@dataclasses.dataclass
class GradcamConfig:
    enabled: bool
    target_layer: str | None
    max_images: int
    max_rows: int
    batch_size: int
    deletion_fraction: float
    deletion_fill: Literal["blur", "zero"]
    random_state: int


@dataclasses.dataclass
class LoggingConfig:
    artifact_dir: str
    report: bool
    spool_dir: str | None


@dataclasses.dataclass
class CompareConfig:
    enabled: bool
    baseline: str
    top_k: int
    drift_threshold: float


@dataclasses.dataclass
class EvaluateConfig:
    run_by_default: bool


@dataclasses.dataclass
class SparkConfig:
    master: str
    app_name: str
    conf: dict


@dataclasses.dataclass
class ExplainConfig:
    """Every option of mlflow_explain; build it with :func:`load_config`."""

    validation: ValidationConfig
    permutation: PermutationConfig
    shap: ShapConfig
    gradcam: GradcamConfig
    logging: LoggingConfig
    compare: CompareConfig
    evaluate: EvaluateConfig
    spark: SparkConfig
    on_error: Literal["warn", "raise"]

    def to_dict(self) -> dict:
        """The config as plain nested data (callables shown by name), for summary.json."""
        return _plain(dataclasses.asdict(self))


_POSITIVE = {
    "validation.max_rows",
    "permutation.n_repeats",
    "permutation.memory_budget_mb",
    "shap.max_rows",
    "shap.permutation_max_rows",
    "compare.top_k",
    "gradcam.max_images",
    "gradcam.max_rows",
    "gradcam.batch_size",
}
_NON_NEGATIVE = {"shap.background_rows", "shap.dependence_top_k", "shap.local_rows"}
_POSITIVE_OR_NULL = {"permutation.budget_s", "shap.budget_s"}

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
        The validated config.

    Raises
    ------
    ConfigError
        On an unknown key, a value of the wrong type or out of range, or an unreadable file.
    """
    merged = copy.deepcopy(_defaults())
    if isinstance(source, ExplainConfig):
        merged = dataclasses.asdict(source)
    elif isinstance(source, (str, Path)):
        merged = _merge(merged, _read_yaml(Path(source)), "")
    elif isinstance(source, Mapping):
        merged = _merge(merged, source, "")
    elif source is not None:
        raise ConfigError(f"config must be a YAML path, a dict or an ExplainConfig, not {type(source).__name__}.")
    if overrides:
        as_dict = overrides if isinstance(overrides, Mapping) else _parse_overrides(overrides)
        merged = _merge(merged, as_dict, "")
    return _build(ExplainConfig, merged, "")


@functools.lru_cache(maxsize=1)
def _defaults() -> dict:
    """configs/default.yaml, parsed once per process (callers deep-copy it before changing it)."""
    return _read_yaml(DEFAULT_CONFIG_PATH)


def _read_yaml(path: Path) -> dict:
    try:
        loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
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
        node[leaf] = yaml.safe_load(raw) if raw.strip() else None
    return result


def _merge(base: Mapping, update: Mapping, prefix: str) -> dict:
    """Recursively merge ``update`` over ``base``; keys absent from ``base`` are errors."""
    merged = copy.deepcopy(dict(base))
    unknown = [f"{prefix}{key}" for key in update if key not in base]
    if unknown:
        raise ConfigError(f"Unknown config key(s): {', '.join(map(str, unknown))}.")
    for key, value in update.items():
        # feature_groups is a free-form mapping: replaced whole, not merged key by key.
        if isinstance(base[key], Mapping) and base[key] and isinstance(value, Mapping):
            merged[key] = _merge(base[key], value, f"{prefix}{key}.")
        else:
            merged[key] = value
    return merged


def _build(cls: type, values: Mapping, prefix: str) -> Any:
    hints = typing.get_type_hints(cls)
    kwargs = {}
    for field in dataclasses.fields(cls):
        name, expected = f"{prefix}{field.name}", hints[field.name]
        value = values[field.name]
        if dataclasses.is_dataclass(expected):
            if not isinstance(value, Mapping):
                raise ConfigError(f"Config section {name!r} must be a mapping, not {value!r}.")
            kwargs[field.name] = _build(expected, value, f"{name}.")
        else:
            kwargs[field.name] = _check_value(name, value, expected)
    return cls(**kwargs)


def _check_value(name: str, value: Any, expected: Any) -> Any:
    if not _matches(value, expected):
        raise ConfigError(f"Config key {name!r} must be {_describe(expected)}, not {value!r}.")
    if name in _POSITIVE and value <= 0:
        raise ConfigError(f"Config key {name!r} must be positive, not {value!r}.")
    if name in _NON_NEGATIVE and value < 0:
        raise ConfigError(f"Config key {name!r} must not be negative, not {value!r}.")
    if name in _POSITIVE_OR_NULL and value is not None and value <= 0:
        raise ConfigError(f"Config key {name!r} must be a positive number of seconds or null, not {value!r}.")
    if name == "permutation.max_samples" and (value <= 0 or (isinstance(value, float) and value > 1)):
        raise ConfigError(f"Config key {name!r} must be a fraction in (0, 1] or a row count >= 1, not {value!r}.")
    if name == "gradcam.deletion_fraction" and not 0 < value < 1:
        raise ConfigError(f"Config key {name!r} must be a fraction in (0, 1), not {value!r}.")
    return value


def _matches(value: Any, expected: Any) -> bool:
    origin = typing.get_origin(expected)
    if expected is Any:
        return True
    if origin in (Union, types.UnionType):
        return any(_matches(value, option) for option in typing.get_args(expected))
    if origin is Literal:
        return value in typing.get_args(expected)
    if expected is type(None):
        return value is None
    if expected is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if expected is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, expected)


def _describe(expected: Any) -> str:
    origin = typing.get_origin(expected)
    if origin in (Union, types.UnionType):
        return " or ".join(_describe(option) for option in typing.get_args(expected))
    if origin is Literal:
        return "one of " + ", ".join(repr(option) for option in typing.get_args(expected))
    if expected is type(None):
        return "null"
    name = expected.__name__
    return f"an {name}" if name[0] in "aeiou" else f"a {name}"


def _plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(key): _plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    if callable(value):
        return getattr(value, "__name__", repr(value))
    return value

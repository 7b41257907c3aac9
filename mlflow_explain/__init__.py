"""mlflow_explain: every MLflow training run explains itself.

Permutation importance and SHAP values of a fitted model on its validation set, logged into
the MLflow run as per-feature metrics, tables, plots and one HTML report; Grad-CAM heatmaps of
PyTorch image classifiers with ``explain_images`` (extra ``torch``); ``log_explainer`` logs a model
that ``mlflow models serve`` answers with each row's prediction and SHAP values.

The public names are imported on first use (PEP 562), so that importing the package, MLflow's
evaluator registry (which loads this plugin's entry point) and ``mlflow-explain --help`` pull in
neither shap nor the engines.

The package is laid out by layer (docs/architecture.md): the shared vocabulary here at the top
(config, errors, results, data, models, keys, steps, shap_table), then ``methods/``, ``output/``,
``engines/``, ``publish/``, ``serving/`` and ``spark/``, and ``triggers/``; each layer imports only
the layers below it.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .config import ExplainConfig, load_config
    from .errors import ConfigError, ExplainError, InvalidInputError, MissingDependencyError
    from .results import Comparison, Explanation
    from .serving.log_explainer import log_explainer
    from .triggers.autolog.autolog import autolog, set_validation_data
    from .triggers.compare import compare
    from .triggers.explain import explain
    from .triggers.explain_images import explain_images
    from .triggers.explain_text import explain_text

from ._version import __version__

# Public name -> the submodule defining it.
_SOURCES = {
    "Comparison": "results",
    "ConfigError": "errors",
    "ExplainConfig": "config",
    "ExplainError": "errors",
    "Explanation": "results",
    "InvalidInputError": "errors",
    "MissingDependencyError": "errors",
    "autolog": "triggers.autolog.autolog",
    "compare": "triggers.compare",
    "explain": "triggers.explain",
    "explain_images": "triggers.explain_images",
    "explain_text": "triggers.explain_text",
    "load_config": "config",
    "log_explainer": "serving.log_explainer",
    "set_validation_data": "triggers.autolog.autolog",
}

__all__ = [
    "Comparison",
    "ConfigError",
    "ExplainConfig",
    "ExplainError",
    "Explanation",
    "InvalidInputError",
    "MissingDependencyError",
    "__version__",
    "autolog",
    "compare",
    "explain",
    "explain_images",
    "explain_text",
    "load_config",
    "log_explainer",
    "set_validation_data",
]


def __getattr__(name: str) -> Any:
    source = _SOURCES.get(name)
    if source is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{source}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))

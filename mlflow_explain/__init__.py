"""mlflow_explain: every MLflow training run explains itself.

Permutation importance and SHAP values of a fitted model on its validation set, logged into
the MLflow run as per-feature metrics, tables, plots and one HTML report; Grad-CAM heatmaps of
PyTorch image classifiers with ``explain_images`` (extra ``torch``); ``log_explainer`` logs a model
that ``mlflow models serve`` answers with each row's prediction and SHAP values.

The public names are imported on first use (PEP 562), so that importing the package, MLflow's
evaluator registry (which loads this plugin's entry point) and ``mlflow-explain --help`` pull in
neither shap nor the engines.
"""

from __future__ import annotations

import importlib
import sys
import types
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .api import explain
    from .autolog import autolog, set_validation_data
    from .compare_api import compare
    from .config import ExplainConfig, load_config
    from .errors import ConfigError, ExplainError, InvalidInputError, MissingDependencyError
    from .image_api import explain_images
    from .results import Comparison, Explanation
    from .serving import log_explainer

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
    "autolog": "autolog",
    "compare": "compare_api",
    "explain": "api",
    "explain_images": "image_api",
    "load_config": "config",
    "log_explainer": "serving",
    "set_validation_data": "autolog",
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


class _Package(types.ModuleType):
    """This package's module type: a public name stays the public object when a submodule shares it.

    The import system binds a submodule on its package (``mlflow_explain.autolog = <module>``), and
    ``autolog`` and ``compare`` are also submodules' names; that binding is skipped for public names,
    which keep resolving to the function, as they did when this package imported everything eagerly.
    """

    def __setattr__(self, name: str, value: Any) -> None:
        if isinstance(value, types.ModuleType) and name in _SOURCES:
            return
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package

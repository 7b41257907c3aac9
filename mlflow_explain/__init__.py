"""mlflow_explain: every MLflow training run explains itself.

Permutation importance and SHAP values of a fitted model on its validation set, logged into
the MLflow run as per-feature metrics, tables, plots and one HTML report; Grad-CAM heatmaps of
PyTorch image classifiers with ``explain_images`` (extra ``torch``).
"""

from ._version import __version__
from .api import explain
from .autolog import autolog, set_validation_data
from .compare_api import compare
from .config import ExplainConfig, load_config
from .errors import ConfigError, ExplainError, InvalidInputError, MissingDependencyError
from .image_api import explain_images
from .results import Comparison, Explanation

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
    "set_validation_data",
]

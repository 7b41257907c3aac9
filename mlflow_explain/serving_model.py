"""The import path of the served explainer in models logged by mlflow-explain 0.1.0: kept for them.

An explainer logged by 0.1.0 loads with ``from mlflow_explain.serving_model import ExplainerModel``
(its ``serving_entry.py``). In a fresh process MLflow finds the model's own copy of the package;
in one that has imported this package already, that import lands here. New explainers load from
``mlflow_explain.serving.explainer_model``.
"""

from .serving.explainer_model import ExplainerModel

__all__ = ["ExplainerModel"]

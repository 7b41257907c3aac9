"""The file MLflow runs to load a logged explainer (models from code): it names the served model.

``serving.log_explainer`` logs it as the pyfunc model's ``python_model``; MLflow copies it into the
model and executes it when the model is loaded, after putting the model's copy of this package on
the path, so nothing but the fitted model is pickled.
"""

from mlflow.models import set_model

from mlflow_explain.serving.explainer_model import ExplainerModel

set_model(ExplainerModel())

"""The ``explain`` evaluator of ``mlflow.models.evaluate`` (entry point group ``mlflow.model_evaluator``).

    mlflow.models.evaluate(model_uri, data, targets="y", model_type="regressor",
                           evaluators=["explain"], evaluator_config={"explain": {...}})

It unwraps the pyfunc model to the raw estimator where the flavor allows, so tree and linear
models take the fast exact SHAP path and a model logged with ``mlflow.pytorch`` is its
``torch.nn.Module`` (a classifier or regressor as ``model_type`` says), runs the same engine as
``explain()`` (a model logged with ``mlflow.spark``: the Spark engine, on the evaluation rows made a
Spark DataFrame), logs into the evaluation's run, and returns the metrics and the ``explain/`` artifacts.

MLflow imports this module whenever it loads its evaluator registry (every ``mlflow.models.evaluate``
call), so the engine and its libraries are imported only once the evaluator is used.
"""

from __future__ import annotations

import sys
from pathlib import PurePosixPath
from typing import Any

from mlflow.models.evaluation.base import EvaluationResult, ModelEvaluator

from ..config import load_config
from ..errors import ConfigError, InvalidInputError


class ExplainEvaluator(ModelEvaluator):
    """Permutation importance and SHAP explanations as an MLflow model evaluator."""

    @classmethod
    def can_evaluate(cls, *, model_type: str, evaluator_config: dict, **kwargs: Any) -> bool:
        """Regressors and classifiers; when ``evaluators`` is left unset, only if the config asks for it."""
        if model_type not in ("regressor", "classifier"):
            return False
        try:
            config = load_config(evaluator_config or None)
        except ConfigError:
            return False  # a flat config meant for another evaluator
        return config.evaluate.run_by_default or not _choosing_unnamed_evaluators()

    def evaluate(
        self, *, model_type: str, dataset: Any, run_id: str, evaluator_config: dict, model: Any = None, **kwargs: Any
    ) -> EvaluationResult:
        """Explain ``model`` on the evaluation data, log into ``run_id`` and return metrics and artifacts."""
        from ..models import is_spark_ml_model, is_torch_module
        from ..publish import tracking
        from .explain import explain_logged
        from .spark_ml import explain_rows_on_spark

        if model is None:
            raise InvalidInputError("The explain evaluator needs a model; it cannot explain a table of predictions.")
        raw_model = tracking.unwrap_pyfunc(model)
        config = load_config(evaluator_config or None)
        if is_torch_module(raw_model) and config.torch.task == "auto":  # the model_type says what its outputs are
            task = "classification" if model_type == "classifier" else "regression"
            config = load_config(config, overrides={"torch": {"task": task}})
        if is_spark_ml_model(raw_model):  # logged with mlflow.spark: explained by the Spark engine
            explanation, logged = explain_rows_on_spark(
                raw_model, dataset.features_data, dataset.labels_data, config, run_id
            )
        else:
            explanation, logged = explain_logged(
                raw_model,
                dataset.features_data,
                dataset.labels_data,
                config=config,
                run_id=run_id,
                input_names=tracking.signature_input_names(model),
            )
        folder = f"{config.logging.artifact_dir}/"
        root = f"{tracking.artifact_root(run_id)}/{folder}" if logged else ""
        artifacts = {folder + path: _artifact(path, root + path) for path in logged}
        return EvaluationResult(metrics=tracking.explanation_metrics(explanation), artifacts=artifacts, run_id=run_id)


def _artifact(path: str, uri: str) -> Any:
    """The MLflow evaluation artifact of one logged file, typed by its suffix."""
    from mlflow.models.evaluation.artifacts import (  # imports matplotlib: only once the evaluator runs
        CsvEvaluationArtifact,
        JsonEvaluationArtifact,
        ParquetEvaluationArtifact,
        TextEvaluationArtifact,
    )

    types = {".csv": CsvEvaluationArtifact, ".parquet": ParquetEvaluationArtifact, ".json": JsonEvaluationArtifact}
    return types.get(PurePosixPath(path).suffix, TextEvaluationArtifact)(uri=uri)


def _choosing_unnamed_evaluators() -> bool:
    """True when MLflow asks because ``evaluators`` was left unset.

    MLflow calls ``can_evaluate`` with the same arguments whether or not the user named this
    evaluator; only its ``resolve_evaluators_and_configs``, which picks evaluators for an unset
    ``evaluators``, tells the two apart, so that caller is looked for on the stack.
    """
    frame = sys._getframe(1)
    while frame is not None:
        if frame.f_code.co_name == "resolve_evaluators_and_configs":
            return True
        frame = frame.f_back
    return False

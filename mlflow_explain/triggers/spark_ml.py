"""Spark ML models met with pandas rows (the evaluator): explained on Spark, on the rows made a Spark DataFrame.

The evaluator loads logged models through pyfunc; a model logged with ``mlflow.spark`` comes back as
its ``PipelineModel``, which only the Spark engine explains. ``mlflow_explain.spark`` imports pyspark,
so it is imported only once a Spark ML model is in hand (``models.is_spark_ml_model`` tells).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from ..config import ExplainConfig
from ..results import Explanation


def explain_rows_on_spark(
    model: Any, X: pd.DataFrame, y: Any, config: ExplainConfig, run_id: str
) -> tuple[Explanation, list[str]]:
    """Explain a Spark ML model on pandas rows, made a Spark DataFrame of the active session (else one on
    ``spark.master``), into run ``run_id``; the explanation and the files logged.

    The target column is named as the model's raw label column, so that a pipeline indexing its label
    (a ``StringIndexer``) finds it.
    """
    from ..spark import spark_session
    from ..spark.explain import explain_logged
    from ..spark.ml_model import spark_ml_model

    read = spark_ml_model(model)
    target = read.label_column or read.predictor.getLabelCol()
    frame = spark_session(config.spark).createDataFrame(pd.DataFrame(X).assign(**{target: np.asarray(y)}))
    return explain_logged(model, frame, target, config=config, run_id=run_id)

"""Scale-out on Apache Spark: explain a model on every row of a Spark DataFrame (extra ``spark``).

``explain(model_or_uri, spark_df, target, ...)`` computes SHAP values and permutation importance
on the executors and logs the results exactly as :func:`mlflow_explain.explain` does.

Layer: spark, beside serving. May import the shared vocabulary, methods, engines, output and
publish; never serving or a trigger. See docs/architecture.md.
"""

from .explain import explain
from .session import spark_session

__all__ = ["explain", "spark_session"]

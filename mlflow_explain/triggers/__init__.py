"""Triggers: the ways a user starts an explanation, each a thin caller of an engine and the publishing flow.

``explain`` (tables), ``explain_images`` (image classifiers), ``compare`` (runs side by side),
``evaluator`` (``mlflow.models.evaluate(evaluators=["explain"])``), ``cli`` (``mlflow-explain``)
and ``autolog/`` (after ``fit``). This package and ``evaluator`` import nothing heavy at module
level: MLflow loads the evaluator's entry point whenever ``mlflow.models.evaluation`` is imported.

Layer: triggers, the top. May import every layer below. See docs/architecture.md.
"""

"""Engines: turn one request (a model, its data, the config) into an Explanation, without MLflow.

``base`` holds the Engine protocol and the plumbing every engine shares; ``tabular`` (rows in
memory) and ``image`` (PyTorch image classifiers) are the local engines, the Spark engine lives in
``mlflow_explain.spark``. Beside them: the torch adapter for tabular modules, time budgets, the
diagnostics and the comparison metrics (drift, stability).

Layer: engines. May import the shared vocabulary and ``methods``; never MLflow, output, publish or
a trigger. See docs/architecture.md.
"""

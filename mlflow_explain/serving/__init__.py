"""Serving: ``log_explainer`` logs a pyfunc model that answers each row with its prediction and SHAP values.

``explainer_model`` is the served model, ``entry`` the file MLflow runs to load it (models from
code). Kept light: MLflow imports ``entry`` when it loads a logged explainer.

Layer: serving. May import the shared vocabulary, methods, engines, output and publish; never
Spark or a trigger. See docs/architecture.md.
"""

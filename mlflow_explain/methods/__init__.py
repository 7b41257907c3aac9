"""Explanation methods: pure computation on a model and its data, one file per method.

Layer: methods. May import the shared vocabulary at the package's top (config, errors, results,
data, models, keys, shap_table, steps) and never MLflow, the engines, output, publish or any
trigger. The layers and how to add a method: docs/architecture.md.
"""

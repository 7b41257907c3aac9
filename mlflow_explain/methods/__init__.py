"""Explanation methods: pure computation on a model and data, no MLflow."""

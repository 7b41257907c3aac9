"""What the examples share: the MLflow store they log to, and how to open it in the MLflow UI."""

from __future__ import annotations

import os

TRACKING_URI = os.environ.get("MLFLOW_TRACKING_URI", "sqlite:///mlflow.db")


def browse_hint() -> str:
    """The command (local store) or address (tracking server) that shows the runs in the MLflow UI."""
    if TRACKING_URI.startswith(("http://", "https://")):
        return f"open {TRACKING_URI} in a browser (the tracking server serves the UI)"
    return f"mlflow ui --backend-store-uri {TRACKING_URI}"

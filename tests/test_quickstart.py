"""The README's quick start: examples/quickstart.py runs and leaves an explained run behind."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from mlflow.tracking import MlflowClient

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "quickstart.py"


def test_quickstart_explains_into_a_local_sqlite_store(tmp_path):
    environment = {key: value for key, value in os.environ.items() if not key.startswith("MLFLOW_")}
    done = subprocess.run([sys.executable, str(EXAMPLE)], cwd=tmp_path, env=environment, capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    run_id = re.search(r"Explained run ([0-9a-f]{32})", done.stdout).group(1)
    assert "mlflow ui --backend-store-uri sqlite:///mlflow.db" in done.stdout
    assert (tmp_path / "mlflow.db").exists()
    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}")
    run = client.get_run(run_id)
    assert run.data.tags["mlflow_explain.status"] == "ok"
    assert "permutation_importance/mean radius" in run.data.metrics
    assert "val_accuracy" in run.data.metrics
    assert {item.path for item in client.list_artifacts(run_id)} >= {"explain"}

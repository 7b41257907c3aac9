"""Having the plugin installed costs nothing: MLflow's evaluator registry, the package and the CLI stay light.

Each check runs a fresh interpreter (this checkout first on the path) and reads its ``sys.modules``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import mlflow_explain

REPOSITORY = Path(__file__).resolve().parents[1]
PLUGIN_HEAVY = (
    "mlflow_explain.triggers.explain",
    "mlflow_explain.engines.base",
    "mlflow_explain.methods",
    "mlflow_explain.output.plots",
)
NEVER = ("shap", "torch", "lightgbm", "xgboost", *PLUGIN_HEAVY)

pytestmark = pytest.mark.integration  # each test starts a fresh interpreter

_REPORT = """
import json, sys
prefixes = {prefixes!r}
print(json.dumps({{
    "loaded": sorted(p for p in prefixes if any(m == p or m.startswith(p + ".") for m in sys.modules)),
    "evaluators": EVALUATORS,
}}))
"""


def _loaded_after(statement: str, tmp_path: Path, prefixes: tuple[str, ...]) -> dict:
    """The heavy modules (of ``prefixes``) a fresh interpreter holds after ``statement``, and ``EVALUATORS``."""
    path = os.pathsep.join([str(REPOSITORY), os.environ.get("PYTHONPATH", "")])
    code = "EVALUATORS = None\n" + statement + _REPORT.format(prefixes=prefixes)
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": path},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_mlflows_evaluator_registry_loads_the_plugin_without_shap_or_its_engine(tmp_path):
    statement = "import mlflow.models.evaluation\nEVALUATORS = mlflow.models.evaluation.list_evaluators()\n"
    found = _loaded_after(statement, tmp_path, NEVER + ("mlflow_explain.triggers.evaluator",))
    assert "explain" in found["evaluators"], "the entry point was loaded (else this test proves nothing)"
    assert found["loaded"] == ["mlflow_explain.triggers.evaluator"]


def test_import_mlflow_explain_loads_no_heavy_module(tmp_path):
    found = _loaded_after("import mlflow_explain\n", tmp_path, NEVER + ("sklearn", "pyspark", "mlflow"))
    assert found["loaded"] == []


def test_cli_help_and_config_load_no_heavy_module(tmp_path):
    statement = (
        "import contextlib, io\nfrom mlflow_explain.triggers.cli import main\n"
        "for args in (['--help'], ['config'], ['explain', '--help']):\n"
        "    with contextlib.redirect_stdout(io.StringIO()), contextlib.suppress(SystemExit):\n"
        "        main(args)\n"
    )
    assert _loaded_after(statement, tmp_path, NEVER + ("sklearn", "pyspark"))["loaded"] == []


def test_public_names_are_there_lazily():
    assert set(mlflow_explain.__all__) == set(mlflow_explain._SOURCES) | {"__version__"}
    assert set(mlflow_explain.__all__) <= set(dir(mlflow_explain))
    for name in mlflow_explain.__all__:
        assert getattr(mlflow_explain, name) is not None
    from mlflow_explain import explain

    assert callable(explain) and explain.__module__ == "mlflow_explain.triggers.explain"
    with pytest.raises(AttributeError, match="no attribute 'nothing_here'"):
        mlflow_explain.nothing_here  # noqa: B018

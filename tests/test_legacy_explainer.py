"""An explainer logged by mlflow-explain 0.1.0, before its modules moved into sub-folders, still loads and answers.

The fixture ``tests/fixtures/explainer_0_1_0`` is the model ``log_explainer`` logged at commit d083146
(``make_fixture.py``), the five rows it was asked and its answer then. The model's ``serving_entry.py``
runs ``from mlflow_explain.serving_model import ExplainerModel``, and MLflow puts the model's own copy
of the package (``code/``) first on the path before running it. Each check loads a copy of the fixture
in a fresh interpreter (this checkout first on the path), as ``mlflow models serve`` does.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from .helpers import REPOSITORY

FIXTURE = Path(__file__).resolve().parent / "fixtures" / "explainer_0_1_0"

pytestmark = pytest.mark.integration  # each test starts a fresh interpreter

_LOAD_AND_ANSWER = """
import json, sys
{before}
import mlflow.pyfunc
import pandas as pd

served = mlflow.pyfunc.load_model({model!r})
rows = pd.read_csv({rows!r}, float_precision="round_trip")
served.predict(rows).to_parquet({answer!r})
model_class = type(served.unwrap_python_model())
print(json.dumps({{
    "package": sys.modules["mlflow_explain"].__file__,
    "model_class": model_class.__module__ + "." + model_class.__qualname__,
    "model_class_file": sys.modules[model_class.__module__].__file__,
}}))
"""


def _served_answer(tmp_path: Path, before: str) -> tuple[pd.DataFrame, dict]:
    """The fixture model's answer to its rows in a fresh interpreter that runs ``before`` first, and where its code
    came from.

    The model is copied into ``tmp_path`` first: loading it compiles its code, which writes ``__pycache__``.
    """
    model = tmp_path / "model"
    shutil.copytree(FIXTURE / "model", model)
    answer = tmp_path / "answer.parquet"
    code = _LOAD_AND_ANSWER.format(before=before, model=str(model), rows=str(FIXTURE / "rows.csv"), answer=str(answer))
    environment = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(REPOSITORY), os.environ.get("PYTHONPATH", "")]),
        "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'mlflow.db'}",
    }
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, env=environment, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return pd.read_parquet(answer), json.loads(done.stdout.strip().splitlines()[-1])


def _assert_answers_as_logged(answer: pd.DataFrame) -> None:
    expected = pd.read_csv(FIXTURE / "expected.csv", float_precision="round_trip")
    assert list(answer.columns) == list(expected.columns)
    pd.testing.assert_frame_equal(answer, expected, check_dtype=False, check_exact=False, rtol=0, atol=1e-9)


def test_a_fresh_interpreter_serves_the_0_1_0_explainer_with_the_code_it_was_logged_with(tmp_path):
    """``mlflow models serve`` and a script's ``mlflow.pyfunc.load_model`` of an explainer logged by 0.1.0
    answer its rows as 0.1.0 did, whatever this checkout's layout.

    Nothing imports mlflow_explain before the model is loaded, so the model's own copy of 0.1.0 (its
    ``code/`` folder, first on the path) is the package that serves it.
    """
    answer, origin = _served_answer(tmp_path, before="")
    code_folder = (tmp_path / "model" / "code").resolve()
    assert Path(origin["package"]).resolve().is_relative_to(code_folder), origin
    assert Path(origin["model_class_file"]).resolve().is_relative_to(code_folder), origin
    _assert_answers_as_logged(answer)


def test_an_interpreter_already_using_the_plugin_still_serves_the_0_1_0_explainer(tmp_path):
    """A notebook or job that already used the plugin (``mlflow_explain.explain``) can load an explainer
    logged by 0.1.0 and gets the answer 0.1.0 gave.

    The package is then this checkout's, already in ``sys.modules``: the model's copy is not imported, and
    its ``from mlflow_explain.serving_model import ExplainerModel`` must resolve in this checkout.
    """
    answer, origin = _served_answer(tmp_path, before="import mlflow_explain\nmlflow_explain.explain\n")
    assert Path(origin["package"]).resolve().is_relative_to(REPOSITORY / "mlflow_explain"), origin
    _assert_answers_as_logged(answer)

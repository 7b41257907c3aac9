"""The mlflow-explain command line."""

from __future__ import annotations

import yaml
from click.testing import CliRunner

from mlflow_explain.cli import main


def test_config_prints_the_effective_config(tmp_path):
    path = tmp_path / "mine.yaml"
    path.write_text("permutation:\n  n_repeats: 9\n")
    result = CliRunner().invoke(main, ["config", "--config", str(path), "--set", "shap.max_rows=123"])
    assert result.exit_code == 0, result.output
    printed = yaml.safe_load(result.output)
    assert printed["permutation"]["n_repeats"] == 9 and printed["shap"]["max_rows"] == 123
    assert printed["shap"]["background_rows"] == 100


def test_config_rejects_unknown_keys_with_exit_code_2():
    result = CliRunner().invoke(main, ["config", "--set", "shap.rows=1"])
    assert result.exit_code == 2
    assert "Unknown config key(s): shap.rows" in result.output

"""The config: defaults from configs/default.yaml, merging, overrides and validation."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from mlflow_explain import ConfigError, ExplainConfig, load_config

DEFAULT_YAML = Path(__file__).resolve().parents[1] / "configs" / "default.yaml"


def test_defaults_are_the_documented_file():
    documented = yaml.safe_load(DEFAULT_YAML.read_text())
    assert load_config().to_dict() == documented


def test_every_default_key_has_a_comment():
    for line in DEFAULT_YAML.read_text().splitlines():
        if line.startswith("  ") and ":" in line:
            assert "#" in line, f"undocumented option: {line.strip()}"


def test_dict_yaml_file_and_overrides_merge_in_order(tmp_path):
    path = tmp_path / "mine.yaml"
    path.write_text("permutation:\n  n_repeats: 7\nshap:\n  max_rows: 300\n")
    config = load_config(path, overrides=["shap.max_rows=50", "permutation.scoring=[r2, neg_mean_absolute_error]"])
    assert isinstance(config, ExplainConfig)
    assert config.permutation.n_repeats == 7 and config.shap.max_rows == 50
    assert config.permutation.scoring == ["r2", "neg_mean_absolute_error"]
    assert config.shap.background_rows == 100, "untouched keys keep their defaults"
    assert load_config({"on_error": "raise"}).on_error == "raise"
    assert load_config(config) is not config and load_config(config) == config


def test_feature_groups_replace_the_default_mapping():
    config = load_config({"permutation": {"feature_groups": {"address": ["city", "zip"]}}})
    assert config.permutation.feature_groups == {"address": ["city", "zip"]}


@pytest.mark.parametrize(
    "bad, message",
    [
        ({"shap": {"max_rowz": 1}}, r"Unknown config key\(s\): shap.max_rowz"),
        ({"tracking": {}}, r"Unknown config key\(s\): tracking"),
        ({"permutation": {"n_repeats": "five"}}, r"'permutation.n_repeats' must be an int, not 'five'"),
        ({"permutation": {"n_repeats": 0}}, r"'permutation.n_repeats' must be positive"),
        ({"permutation": {"max_samples": 1.5}}, r"fraction in \(0, 1\]"),
        ({"shap": {"algorithm": "kernel"}}, r"one of 'auto', 'tree', 'linear', 'permutation'"),
        ({"shap": "yes"}, r"section 'shap' must be a mapping"),
        ({"on_error": "ignore"}, r"'on_error' must be one of 'warn', 'raise'"),
    ],
)
def test_bad_values_are_named(bad, message):
    with pytest.raises(ConfigError, match=message):
        load_config(bad)


def test_bad_override_and_file(tmp_path):
    with pytest.raises(ConfigError, match="section.key=value"):
        load_config(overrides=["shap.max_rows"])
    with pytest.raises(ConfigError, match="Cannot read config file"):
        load_config(tmp_path / "absent.yaml")
    (tmp_path / "list.yaml").write_text("- 1\n- 2\n")
    with pytest.raises(ConfigError, match="must hold a mapping"):
        load_config(tmp_path / "list.yaml")

"""The config: the models, the defaults files written from them, merging, overrides and validation."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from sklearn.metrics import get_scorer, make_scorer, mean_absolute_error

from mlflow_explain import ConfigError, ExplainConfig, load_config
from mlflow_explain.config import DEFAULT_CONFIG_PATH, defaults_yaml

DEFAULT_YAML = Path(__file__).resolve().parents[1] / "configs" / "default.yaml"
SECTIONS = [name for name in ExplainConfig.model_fields if name != "on_error"]


def test_defaults_are_the_documented_file():
    documented = yaml.safe_load(DEFAULT_YAML.read_text())
    assert load_config().to_dict() == documented == ExplainConfig().to_dict()
    assert repr(load_config()) == repr(ExplainConfig()), "defaults already of their field's type (512.0, not 512)"


def _declared() -> dict:
    """Every section and option of the models by dotted key, with its pydantic field."""
    fields = {}
    for name, field in ExplainConfig.model_fields.items():
        fields[name] = field
        if name in SECTIONS:
            fields.update({f"{name}.{key}": option for key, option in field.annotation.model_fields.items()})
    return fields


def _comments(text: str) -> dict[str, str]:
    """Dotted key -> its comment in a defaults file (a comment wrapped over several lines joined)."""
    comments: dict[str, str] = {}
    section = key = ""
    for line in text.splitlines():
        content, _, comment = line.partition("# ")
        if not content.strip():
            if key and comment:
                comments[key] += " " + comment
            continue
        name = content.split(":")[0]
        if name == name.lstrip():
            section = key = name
        else:
            key = f"{section}.{name.strip()}"
        comments[key] = comment
    return comments


def test_both_defaults_files_are_the_models_written_out():
    """A key, default or comment changed in config.py and not in the files (or the other way round) fails here."""
    assert not DEFAULT_CONFIG_PATH.is_symlink(), "a real file in the package (a symlink breaks on Windows)"
    expected = defaults_yaml()
    stale = [str(path) for path in (DEFAULT_CONFIG_PATH, DEFAULT_YAML) if path.read_text(encoding="utf-8") != expected]
    assert not stale, f"{stale} differ from mlflow_explain/config.py: run python configs/write_default.py"
    assert yaml.safe_load(expected) == ExplainConfig().to_dict(), "every key with its default"
    comments = _comments(expected)
    assert list(comments) == list(_declared()), "in the models' order"
    assert comments == {key: field.description for key, field in _declared().items()}, "descriptions as comments"
    assert max(map(len, expected.splitlines())) <= 120


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
        ({"shap": {"algorithm": "kernel"}}, r"one of 'auto', 'tree', 'linear', 'deep', 'permutation'"),
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


POSITIVE = [
    "validation.max_rows",
    "permutation.n_repeats",
    "permutation.memory_budget_mb",
    "shap.max_rows",
    "shap.permutation_max_rows",
    "gradcam.max_images",
    "gradcam.max_rows",
    "gradcam.batch_size",
    "compare.top_k",
]
NOT_NEGATIVE = ["shap.background_rows", "shap.dependence_top_k", "shap.local_rows"] + [
    f"{section}.random_state" for section in ("validation", "permutation", "shap", "gradcam")
]


def _nested(key: str, value) -> dict:
    section, option = key.split(".")
    return {section: {option: value}}


@pytest.mark.parametrize(
    "key, bad, message",
    [(key, 0, "must be positive") for key in POSITIVE]
    + [(key, -1, "must be 0 or more") for key in NOT_NEGATIVE]
    + [
        ("permutation.max_samples", value, r"must be a fraction in \(0, 1\] or a row count >= 1")
        for value in (0, 0.0, -2, 1.01, 1.5)
    ]
    + [("gradcam.deletion_fraction", value, r"must be a fraction in \(0, 1\)") for value in (0, 0.0, 1, 1.0)]
    + [
        (f"{section}.budget_s", value, "must be a positive number of seconds or null")
        for section in ("permutation", "shap")
        for value in (0, -1.5)
    ]
    + [("compare.drift_threshold", value, r"must be in \[0, 1\]") for value in (-0.1, 1.5)],
)
def test_each_constraint_names_its_key(key, bad, message):
    with pytest.raises(ConfigError, match=rf"^Config key '{key}' {message}, not {bad!r}\.$"):
        load_config(_nested(key, bad))


@pytest.mark.parametrize(
    "key, good",
    [("shap.background_rows", 0), ("permutation.random_state", 2**32 - 1), ("compare.drift_threshold", 0)]
    + [("compare.drift_threshold", 1), ("gradcam.deletion_fraction", 0.999), ("shap.budget_s", 0.01)]
    + [("permutation.max_samples", value) for value in (1e-6, 1.0, 1, 500)],
)
def test_values_on_the_edge_of_a_constraint_are_accepted(key, good):
    section, option = key.split(".")
    assert getattr(getattr(load_config(_nested(key, good)), section), option) == good


def test_max_samples_keeps_a_count_apart_from_a_fraction():
    """sklearn's rule: an int is a row count (1 is one row), a float a fraction (1.0 is every row)."""
    assert type(load_config(_nested("permutation.max_samples", 1)).permutation.max_samples) is int
    assert type(load_config(_nested("permutation.max_samples", 1.0)).permutation.max_samples) is float
    assert load_config(overrides=["permutation.max_samples=300"]).permutation.max_samples == 300


@pytest.mark.parametrize(
    "key, bad, expected",
    [
        ("permutation.n_repeats", True, "an int"),  # a bool is not an int
        ("permutation.n_repeats", 2.0, "an int"),  # nor is a float, even a whole one
        ("validation.max_rows", "5", "an int"),  # a string is not a number
        ("permutation.memory_budget_mb", "512", "a number"),
        ("permutation.memory_budget_mb", False, "a number"),
        ("shap.budget_s", True, "a positive number of seconds or null"),
        ("shap.enabled", 1, "true or false"),
        ("shap.check_additivity", "yes", "true or false"),
        ("validation.max_rows", None, "an int"),
        ("validation.target", 3, "a string or null"),
        ("logging.artifact_dir", None, "a string"),
        ("gradcam.deletion_fill", "noise", "one of 'blur', 'zero'"),
        ("permutation.feature_groups", ["a", "b"], "a mapping"),
        ("spark.conf", "spark.driver.memory=4g", "a mapping"),
        ("permutation.scoring", 3, "null, a scorer name or callable, or a list or mapping of them"),
        ("permutation.scoring", ["r2", 3], "null, a scorer name or callable, or a list or mapping of them"),
    ],
)
def test_types_are_strict(key, bad, expected):
    with pytest.raises(ConfigError, match=rf"^Config key '{key}' must be {expected}, not "):
        load_config(_nested(key, bad))


def test_an_int_is_a_number():
    config = load_config({"permutation": {"memory_budget_mb": 256}, "compare": {"drift_threshold": 1}})
    assert config.permutation.memory_budget_mb == 256.0 and type(config.permutation.memory_budget_mb) is float
    assert config.compare.drift_threshold == 1.0


def test_every_option_rejects_a_wrong_type_with_one_sentence_naming_it():
    """No option is left without a readable expectation (an object is never a valid config value)."""
    for key in _declared():
        if "." in key or key == "on_error":
            bad = {key: object()} if key == "on_error" else _nested(key, object())
            with pytest.raises(ConfigError, match=rf"^Config key '{key}' must be [^\n]+, not <object object at "):
                load_config(bad)


@pytest.mark.parametrize(
    "source, overrides, unknown",
    [
        ({"tracking": {"uri": "x"}}, None, "tracking"),
        ({"shap": {"max_rowz": 1}, "permutation": {"repeats": 2}}, None, "permutation.repeats, shap.max_rowz"),
        (None, ["shap.algo=tree"], "shap.algo"),
        (None, ["shap.max_rows=5", "colour=red"], "colour"),
        (None, {"logging": {"report_html": True}}, "logging.report_html"),
        ({1: {}}, None, "1"),
        ({"spark": {None: 1}}, None, "spark.None"),
    ],
)
def test_unknown_keys_at_each_level_are_all_named(source, overrides, unknown):
    with pytest.raises(ConfigError, match=rf"^Unknown config key\(s\): {unknown}\.$"):
        load_config(source, overrides)


def test_unknown_keys_in_a_file_and_over_a_ready_config(tmp_path):
    path = tmp_path / "mine.yaml"
    path.write_text("gradcam:\n  layer: features.0\n")
    with pytest.raises(ConfigError, match=r"^Unknown config key\(s\): gradcam.layer\.$"):
        load_config(path)
    with pytest.raises(ConfigError, match=r"^Unknown config key\(s\): compare.k\.$"):
        load_config(load_config(), overrides=["compare.k=3"])


def test_scoring_takes_names_callables_lists_and_mappings():
    mae = make_scorer(mean_absolute_error, greater_is_better=False)
    for scoring in (None, "r2", mae, ["r2", mae], ("r2", "neg_mean_absolute_error"), {"fit": "r2", "mae": mae}):
        assert load_config({"permutation": {"scoring": scoring}}).permutation.scoring == scoring
    custom = load_config({"permutation": {"scoring": {"fit": get_scorer("r2"), "gap": mean_absolute_error}}})
    assert custom.to_dict()["permutation"]["scoring"]["gap"] == "mean_absolute_error", "callables by name"
    assert load_config(custom) == custom, "a ready config keeps its callables"


def test_free_form_mappings_are_replaced_whole_and_never_shared():
    groups = {"address": ["city", "zip"]}
    config = load_config({"spark": {"conf": {"a": 1}}}, overrides={"spark": {"conf": {"b": 2}}})
    assert config.spark.conf == {"b": 2}
    config = load_config({"permutation": {"feature_groups": groups}})
    config.permutation.feature_groups["other"] = ["x"]
    assert groups == {"address": ["city", "zip"]}, "the caller's mapping is not the config's"
    assert load_config().permutation.feature_groups == {} and load_config().spark.conf == {}, "defaults untouched"
    nested = load_config(overrides=["spark.conf.spark.driver.memory=4g"]).spark.conf
    assert nested == {"spark": {"driver": {"memory": "4g"}}}


def test_bad_override_values_are_named():
    with pytest.raises(ConfigError, match=r"^Override 'shap.max_rows=\[1' does not hold a valid YAML value"):
        load_config(overrides=["shap.max_rows=[1"])
    with pytest.raises(ConfigError, match="sets a key inside 'shap', which an earlier override set"):
        load_config(overrides=["shap=1", "shap.max_rows=2"])
    with pytest.raises(ConfigError, match=r"^Config key 'shap.max_rows' must be an int, not \{'x': 1\}\.$"):
        load_config(overrides=["shap.max_rows.x=1"])
    with pytest.raises(ConfigError, match="must be a YAML path, a dict or an ExplainConfig, not int"):
        load_config(3)

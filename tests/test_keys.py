"""Feature names become valid, unique MLflow metric keys and safe file names."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from mlflow.utils.validation import _validate_metric_name

from mlflow_explain.keys import key_parts, sanitize

PREFIXES = ["permutation_importance/", "permutation_importance_std.neg_mean_absolute_error/", "shap_mean_abs.class_1/"]


def _assert_valid(parts):
    assert len(set(parts.values())) == len(parts), "parts must be unique"
    for part in parts.values():
        assert "/" not in part and part not in (".", "..") and part.strip() == part
        for prefix in PREFIXES:
            _validate_metric_name(prefix + part)  # raises on a key MLflow refuses
            assert len(prefix + part) <= 250


def test_hostile_names():
    names = ["a/b", "a_b", "..", ".", "<script>alert(1)</script>", "é" * 300, "x" * 300, "quote'\"", "tab\there",
             "", " padded ", "a:b", "数据", "../../etc/passwd"]
    parts = key_parts(names)
    _assert_valid(parts)
    assert parts["a_b"] == "a_b", "a clean name keeps its form even when another collides with it"
    assert parts["a/b"].startswith("a_b_")


def test_mapping_does_not_depend_on_order():
    names = ["a/b", "a_b", "a:b", "c"]
    assert key_parts(names) == key_parts(list(reversed(names)))


def test_clean_names_are_unchanged():
    assert sanitize("mean radius") == "mean radius" and sanitize("x-1.5_y") == "x-1.5_y"


@settings(max_examples=300, deadline=None)
@given(st.lists(st.text(min_size=0, max_size=320), min_size=1, max_size=30))
def test_any_names_map_to_valid_unique_keys(names):
    _assert_valid(key_parts(names))

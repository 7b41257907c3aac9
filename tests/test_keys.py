"""Feature names become valid, unique MLflow metric keys and safe file names."""

from __future__ import annotations

import json
from pathlib import Path, PurePosixPath

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from mlflow.tracking import MlflowClient
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
    names = [
        "a/b",
        "a_b",
        "..",
        ".",
        "<script>alert(1)</script>",
        "é" * 300,
        "x" * 300,
        "quote'\"",
        "tab\there",
        "",
        " padded ",
        "a:b",
        "数据",
        "../../etc/passwd",
    ]
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
    parts = key_parts(names)
    _assert_valid(parts)
    _assert_safe_paths(parts)


def _assert_safe_paths(parts):
    """The artifact paths built from the parts (dependence/<part>.svg, shap_beeswarm.<part>.svg) stay in explain/."""
    for paths in (_artifact_paths("dependence/{}.svg", parts), _artifact_paths("shap_beeswarm.{}.svg", parts)):
        assert len(set(paths)) == len(parts), "one file per name"
        for path in paths:
            assert not path.is_absolute() and ".." not in path.parts and "\\" not in str(path)
            assert path.parts[0] == "explain" and len(path.name.encode("utf-8")) <= 255
            assert str(path) == str(path).strip() and all(part.isprintable() for part in path.parts)


def _artifact_paths(pattern, parts):
    paths = [PurePosixPath("explain", pattern.format(part)) for part in parts.values()]
    assert all(len(path.parts) == len(PurePosixPath("explain", pattern).parts) for path in paths), "no extra folders"
    return paths


@pytest.mark.integration
def test_hostile_names_end_to_end_on_the_server(mlflow_server, hostile_run, tmp_path):
    run_id, names, explanation = hostile_run
    client = MlflowClient(mlflow_server.url)
    run = client.get_run(run_id)
    assert explanation.status == "ok" and run.data.tags["mlflow_explain.status"] == "ok", explanation.errors
    mapping = json.loads(
        Path(client.download_artifacts(run_id, "explain/feature_keys.json", str(tmp_path))).read_text()
    )
    features = mapping["features"]
    assert sorted(features) == sorted(names), "every original name, exactly, in feature_keys.json"
    assert len(set(features.values())) == len(names)
    expected = {
        f"{prefix}/{features[name]}"
        for name in names
        for prefix in ("permutation_importance", "permutation_importance_std", "shap_mean_abs")
    }
    assert expected <= set(run.data.metrics), "one metric per name and method"
    for key in run.data.metrics:
        _validate_metric_name(key)
    logged = {item.path for item in client.list_artifacts(run_id, "explain/dependence")}
    files = mapping["feature_files"]  # a metric key may hold spaces, a file name not (issue 16 item 12)
    assert logged == {f"explain/dependence/{files[name]}.svg" for name in names}
    assert not any(" " in path for path in logged)
    run_folder = next(path for path in (mlflow_server.root / "artifacts").rglob(run_id) if path.is_dir())
    stored = [path for path in run_folder.rglob("*") if path.is_file()]
    assert len(stored) > len(names) and all(
        path.is_relative_to(run_folder / "artifacts" / "explain") for path in stored
    )
    assert not list(mlflow_server.root.rglob("passwd")), "no name escaped the run's folder"
    report = Path(client.download_artifacts(run_id, "explain/report.html", str(tmp_path))).read_text()
    assert "<script>document.title" not in report and "&lt;script&gt;document.title" in report

"""The ``tracking_uri`` fixture's store, a copy of one migrated database, is a fresh store of the test's own."""

from __future__ import annotations

import sqlite3

import mlflow
import pytest
from mlflow.tracking import MlflowClient

from .helpers import copy_sqlite_store


def _schema(database) -> tuple[set, list]:
    """Every table and index of an SQLite file, each as its name and the clauses of its SQL, and the alembic revision.

    Clauses, not the SQL text: MLflow's migrations write a table's CHECK constraints in no fixed order.
    """
    with sqlite3.connect(database) as connection:
        statements = connection.execute("SELECT type, name, sql FROM sqlite_master").fetchall()
        revision = connection.execute("SELECT version_num FROM alembic_version").fetchall()
    clauses = {
        (kind, name, frozenset(line.strip().rstrip(",").strip() for line in (sql or "").splitlines()))
        for kind, name, sql in statements
    }
    return clauses, revision


@pytest.mark.slow  # MLflow migrates a database of its own to compare with
def test_a_copy_of_the_template_is_the_store_mlflow_creates(migrated_store, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # where both stores put the Default experiment's artifacts
    created_folder, copied_folder = tmp_path / "created", tmp_path / "copied"
    created_folder.mkdir()
    copied_folder.mkdir()
    created = MlflowClient(f"sqlite:///{created_folder / 'mlflow.db'}")  # MLflow migrates it on first use
    copied = MlflowClient(copy_sqlite_store(migrated_store, copied_folder))

    created_experiments, copied_experiments = created.search_experiments(), copied.search_experiments()

    assert _schema(copied_folder / "mlflow.db") == _schema(created_folder / "mlflow.db")
    assert [(e.experiment_id, e.name, e.artifact_location) for e in copied_experiments] == [
        (e.experiment_id, e.name, e.artifact_location) for e in created_experiments
    ]
    assert copied_experiments[0].artifact_location.removeprefix("file://") == str(tmp_path / "mlruns" / "0")
    assert copied.create_experiment("first") == created.create_experiment("first") == "1", "ids start afresh"
    with sqlite3.connect(migrated_store) as template:
        assert template.execute("SELECT COUNT(*) FROM experiments").fetchone() == (0,), "the template is untouched"


def test_copies_share_nothing(migrated_store, tmp_path):
    folders = [tmp_path / "a", tmp_path / "b"]
    for folder in folders:
        folder.mkdir()
    first, second = (MlflowClient(copy_sqlite_store(migrated_store, folder)) for folder in folders)

    experiment_id = first.create_experiment("only-in-a", artifact_location=(folders[0] / "artifacts").as_uri())
    run = first.create_run(experiment_id)
    first.log_metric(run.info.run_id, "m", 1.0)

    assert second.get_experiment_by_name("only-in-a") is None
    assert second.search_runs([experiment.experiment_id for experiment in second.search_experiments()]) == []
    with pytest.raises(mlflow.exceptions.MlflowException, match="not found"):
        second.get_run(run.info.run_id)


@pytest.mark.parametrize("attempt", [1, 2])
def test_each_test_starts_on_an_empty_store(tracking_uri, tmp_path, attempt):
    client = MlflowClient()
    experiments = client.search_experiments()
    assert sorted(experiment.name for experiment in experiments) == ["Default", "tests"]
    assert client.search_runs([experiment.experiment_id for experiment in experiments]) == []
    assert tracking_uri == f"sqlite:///{tmp_path / 'mlflow.db'}"
    with mlflow.start_run():  # left behind on purpose: the next attempt must not see it
        mlflow.log_param("attempt", attempt)

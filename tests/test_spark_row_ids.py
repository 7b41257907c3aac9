"""The user's row id column on the Spark engine: carried into shap_values.parquet as ``index``, never a feature."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from sklearn.ensemble import RandomForestRegressor

from mlflow_explain import InvalidInputError

pytest.importorskip("pyspark")
pytestmark = [pytest.mark.spark, pytest.mark.slow]  # each Spark job takes seconds

from pyspark.ml import Pipeline
from pyspark.ml.feature import VectorAssembler
from pyspark.ml.regression import GBTRegressor

from mlflow_explain.spark import explain

QUIET = {"compare": {"enabled": False}, "permutation": {"n_repeats": 2}, "shap": {"local_rows": 1}}


@pytest.fixture(scope="module")
def customers(spark):
    """120 generated rows: a customer id, two features (unique values) and a target."""
    rng = np.random.default_rng(0)
    rows = pd.DataFrame({"customer": [f"c{k:03d}" for k in range(120)], "x0": rng.permutation(120) / 10.0})
    rows = rows.assign(x1=rng.normal(size=120)).assign(y=lambda frame: frame["x0"] + frame["x1"])
    return rows, spark.createDataFrame(rows)


def test_row_ids_name_the_explained_rows_of_a_python_model(tracking_uri, customers, tmp_path):
    rows, frame = customers
    model = RandomForestRegressor(n_estimators=5, random_state=0).fit(rows[["x0", "x1"]], rows["y"])
    output = str(tmp_path / "shap")
    explanation = explain(model, frame, "y", config=QUIET, shap_output=output, row_id="customer")

    assert explanation.feature_names == ["x0", "x1"]  # the id column is not a feature
    table = pq.read_table(output).to_pandas()
    assert len(table) == 120
    expected = rows.set_index("x0")["customer"]
    assert (table["index"].to_numpy() == expected.loc[table["value:x0"]].to_numpy()).all()
    sampled = explanation.shap
    np.testing.assert_array_equal(sampled.index_labels, expected.loc[sampled.data["x0"]].to_numpy())


def test_a_row_id_that_is_absent_or_a_feature_is_refused(tracking_uri, customers):
    rows, frame = customers
    model = Pipeline(
        stages=[VectorAssembler(inputCols=["x0", "x1"], outputCol="features"), GBTRegressor(labelCol="y", maxIter=2)]
    ).fit(frame)
    with pytest.raises(InvalidInputError, match="row_id 'x0' is a feature the model reads"):
        explain(model, frame, "y", config=QUIET, row_id="x0")
    with pytest.raises(InvalidInputError, match="row_id names no column of the Spark DataFrame"):
        explain(model, frame, "y", config=QUIET, row_id="order")
    with pytest.raises(InvalidInputError, match="row_id 'y' is the target"):
        explain(model, frame, "y", config=QUIET, row_id="y")

"""What a fitted ``pyspark.ml`` model predicts and from which raw columns (pure reading; no MLflow).

A ``PipelineModel`` is read stage by stage: feature stages whose output columns (and, for vectors,
every slot) map back to raw input columns of the user's DataFrame, then one prediction stage (a
classifier or regressor), then optional stages that only relabel its prediction (``IndexToString``).
A ``StringIndexer`` of the predictor's label column names the classes.

The module imports pyspark only when reading a model. :func:`is_spark_ml_model` (defined in
``models.py``, so that the local checks can point such a model here) tells one without importing it.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from ..errors import InvalidInputError
from ..models import is_spark_ml_model
from ..results import Task

__all__ = ["SparkMLModel", "is_spark_ml_model", "spark_ml_model"]

_WORKS = (
    "mlflow_explain explains pyspark.ml classifiers and regressors (logistic and linear regression, decision "
    "trees, random forests, GBTs, ...) alone or at the end of a PipelineModel whose feature stages read named "
    "columns (VectorAssembler, StringIndexer, OneHotEncoder, Imputer, Bucketizer, scalers, VectorIndexer)"
)
# Feature stages that map each slot of their output vector to one slot of their input vector.
_SLOTWISE_VECTOR_STAGES = (
    "StandardScalerModel",
    "MinMaxScalerModel",
    "MaxAbsScalerModel",
    "RobustScalerModel",
    "VectorIndexerModel",
    "Normalizer",
)
# Feature stages that turn each input column into one output column (scalar to scalar).
_COLUMNWISE_STAGES = ("StringIndexerModel", "ImputerModel", "Bucketizer")
_RELABELING_STAGES = ("IndexToString",)  # stages after the predictor that only rename its prediction


@dataclasses.dataclass(frozen=True)
class SparkMLModel:
    """A fitted ``pyspark.ml`` model read for explaining: its predictor, raw feature columns, task and outputs.

    Attributes
    ----------
    model : PipelineModel or Model
        Applied with ``model.transform(DataFrame)``.
    predictor : PredictionModel
        Its prediction stage (``RandomForestClassificationModel``, ``GBTRegressionModel``, ...).
    feature_columns : list of str
        The raw input columns of the user's DataFrame that the feature stages read, in order.
    vector_columns : list of str
        For each slot of the predictor's features vector, the raw column it comes from.
    task : Task
        Binary or multiclass with the classes (the label ``StringIndexer``'s labels, else the indices
        ``0.0 .. numClasses-1`` named ``"0" ..``), or regression.
    prediction_column : str
        The predictor's ``predictionCol``.
    probability_column : str or None
        ``probabilityCol`` of a probabilistic classifier, else None.
    raw_prediction_column : str or None
        ``rawPredictionCol`` of a classifier, else None.
    label_column : str or None
        The raw label column the pipeline indexes (a ``StringIndexer`` on the predictor's label), else None.
    """

    model: Any
    predictor: Any
    feature_columns: list[str]
    vector_columns: list[str]
    task: Task
    prediction_column: str
    probability_column: str | None
    raw_prediction_column: str | None
    label_column: str | None = None

    @property
    def output_columns(self) -> list[str]:
        """The columns ``transform`` adds that the explanation reads: prediction, then probability if any."""
        return [self.prediction_column] + ([self.probability_column] if self.probability_column else [])


def spark_ml_model(model: Any) -> SparkMLModel:
    """Read a fitted ``pyspark.ml`` model: its predictor, raw feature columns, task and output columns.

    Parameters
    ----------
    model : PipelineModel or Model
        A fitted pyspark.ml classifier or regressor, or a PipelineModel ending in one.

    Returns
    -------
    SparkMLModel

    Raises
    ------
    InvalidInputError
        In one sentence naming what is unsupported (clustering, recommendation, a pipeline without a
        predictor, a feature stage whose output cannot be mapped to raw columns, a bare model reading an
        unnamed vector column) and what works instead.
    """
    from pyspark.ml import PipelineModel, PredictionModel

    if not is_spark_ml_model(model):
        raise InvalidInputError(f"The model ({type(model).__name__}) is not a fitted pyspark.ml model; {_WORKS}.")
    stages = _flatten(model) if isinstance(model, PipelineModel) else [model]
    predictors = [position for position, stage in enumerate(stages) if isinstance(stage, PredictionModel)]
    if not predictors:
        kind = _unsupported_kind(stages[-1] if stages else model)
        raise InvalidInputError(f"The model ({type(model).__name__}) {kind}; {_WORKS}.")
    position = predictors[-1]
    predictor = stages[position]
    _check_predictor(predictor)
    for stage in stages[position + 1 :]:
        if type(stage).__name__ not in _RELABELING_STAGES:
            raise InvalidInputError(
                f"The pipeline applies {type(stage).__name__} after its predictor {type(predictor).__name__}; "
                f"{_WORKS}, optionally followed by IndexToString."
            )
    label = predictor.getLabelCol()
    sources, label_indexer = _column_sources(stages[:position], label, type(predictor).__name__)
    features = predictor.getFeaturesCol()
    if features not in sources or sources[features] is None:
        raise InvalidInputError(
            f"The {type(predictor).__name__} reads the vector column {features!r}, which the model does not build "
            "from named columns; explain the PipelineModel that assembles it (a VectorAssembler of the raw columns "
            "followed by the predictor) instead."
        )
    vector_columns = sources[features]
    if len(vector_columns) != predictor.numFeatures:
        raise InvalidInputError(
            f"The {type(predictor).__name__} reads {predictor.numFeatures} features but its feature stages name "
            f"{len(vector_columns)} (a raw vector column among their inputs?); assemble the features from numeric "
            "or categorical columns of the DataFrame instead."
        )
    feature_columns = list(dict.fromkeys(vector_columns))
    label_column = label_indexer.getInputCol() if label_indexer is not None else None
    classifier = _is_classifier(predictor)
    return SparkMLModel(
        model=model,
        predictor=predictor,
        feature_columns=feature_columns,
        vector_columns=list(vector_columns),
        task=_task(predictor, label_indexer) if classifier else Task("regression"),
        prediction_column=predictor.getPredictionCol(),
        probability_column=predictor.getProbabilityCol() if hasattr(predictor, "getProbabilityCol") else None,
        raw_prediction_column=_raw_prediction_column(predictor) if classifier else None,
        label_column=label_column,
    )


def _flatten(pipeline: Any) -> list[Any]:
    """The stages of a PipelineModel, nested PipelineModels expanded in place."""
    from pyspark.ml import PipelineModel

    stages = []
    for stage in pipeline.stages:
        stages.extend(_flatten(stage) if isinstance(stage, PipelineModel) else [stage])
    return stages


def _unsupported_kind(stage: Any) -> str:
    """How to name a model that is not a classifier or regressor: by its family when pyspark says it."""
    family = type(stage).__module__.rsplit(".", 1)[-1]
    kinds = {
        "clustering": "is a clustering model",
        "recommendation": "is a recommendation model",
        "fpm": "is a frequent-pattern model",
        "feature": "has feature stages but no classifier or regressor",
    }
    return kinds.get(family, f"ends in {type(stage).__name__}, which is not a classifier or regressor")


def _check_predictor(predictor: Any) -> None:
    """Refuse a prediction stage that is neither a classifier nor a single-output regressor."""
    from pyspark.ml.regression import RegressionModel

    if not (_is_classifier(predictor) or isinstance(predictor, RegressionModel)):
        raise InvalidInputError(
            f"The model's predictor ({type(predictor).__name__}) is not a classifier or regressor; {_WORKS}."
        )


def _is_classifier(predictor: Any) -> bool:
    from pyspark.ml.classification import ClassificationModel

    return isinstance(predictor, ClassificationModel)


def _raw_prediction_column(predictor: Any) -> str | None:
    return predictor.getRawPredictionCol() if hasattr(predictor, "getRawPredictionCol") else None


def _task(predictor: Any, label_indexer: Any) -> Task:
    """A classifier's task: its classes are the label indexer's labels, else the indices it predicts."""
    n_classes = int(predictor.numClasses)
    kind = "binary" if n_classes == 2 else "multiclass"
    if label_indexer is not None:
        labels = list(label_indexer.labelsArray[0])
        return Task(kind, classes=tuple(labels[:n_classes]))
    return Task(kind, classes=tuple(float(k) for k in range(n_classes)), class_names=tuple(map(str, range(n_classes))))


def _column_sources(stages: list[Any], label: str, predictor_name: str) -> tuple[dict[str, list[str] | None], Any]:
    """Raw columns behind every column the feature stages build, and the StringIndexer of the label if any.

    Returns ``{column: slots}`` where ``slots`` lists, per slot of the column (one for a scalar), the
    raw column it comes from; a column missing from the map is raw and maps to itself. Raises on a
    stage whose output cannot be mapped to raw columns.
    """
    sources: dict[str, list[str] | None] = {}
    label_indexer = None

    def slots(column: str) -> list[str]:
        return sources.get(column) or [column]

    for stage in stages:
        name = type(stage).__name__
        inputs, outputs = _stage_columns(stage)
        if name == "StringIndexerModel" and outputs == [label]:
            label_indexer = stage
        elif name == "VectorAssembler":
            sources[outputs[0]] = [raw for column in inputs for raw in slots(column)]
        elif name == "OneHotEncoderModel":
            sizes = _one_hot_sizes(stage)
            for column, output, size in zip(inputs, outputs, sizes, strict=True):
                sources[output] = slots(column) * size
        elif name in _SLOTWISE_VECTOR_STAGES or name in _COLUMNWISE_STAGES:
            for column, output in zip(inputs, outputs, strict=True):
                sources[output] = slots(column)
        else:
            raise InvalidInputError(
                f"The pipeline's feature stage {name} mixes its input columns, so the {predictor_name}'s features "
                f"cannot be mapped back to raw columns; {_WORKS}."
            )
    return sources, label_indexer


def _stage_columns(stage: Any) -> tuple[list[str], list[str]]:
    """A feature stage's input and output columns (``inputCol``/``outputCol`` or their plural forms)."""
    if stage.hasParam("inputCols") and stage.isDefined("inputCols"):
        inputs = list(stage.getOrDefault("inputCols"))
    else:
        inputs = [stage.getOrDefault("inputCol")]
    if stage.hasParam("outputCols") and stage.isDefined("outputCols"):
        return inputs, list(stage.getOrDefault("outputCols"))
    return inputs, [stage.getOrDefault("outputCol")]


def _one_hot_sizes(stage: Any) -> list[int]:
    """The width of each OneHotEncoder output vector: its categories, one more kept for invalid values, one less
    when the last is dropped."""
    extra = (1 if stage.getHandleInvalid() == "keep" else 0) - (1 if stage.getDropLast() else 0)
    return [int(size) + extra for size in stage.categorySizes]

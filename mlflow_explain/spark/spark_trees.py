"""Spark ML tree models as shap's TreeExplainer model dict: their nodes read once on the driver, into numpy arrays.

shap's TreeExplainer reads pyspark.ml trees itself, but refuses categorical splits, which every
one-hot column of a Spark pipeline brings (a ``OneHotEncoder``'s slots are binary categorical
features for Spark's trees). This reader walks each tree's nodes through the JVM as shap does (the
same weights, thresholds and leaf values) and also takes a categorical split of a two-valued
feature, which is a threshold at 0.5 (its children swapped when category 1 goes left). The
explainer built from the arrays holds no JVM handle: it is pickled to the executors.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import shap
from pyspark.ml.classification import GBTClassificationModel
from pyspark.ml.regression import GBTRegressionModel

_LEAF = -1  # children of a leaf, as in scikit-learn's trees


class UnsupportedTreeError(ValueError):
    """A Spark tree has a split shap's TreeSHAP cannot represent (a categorical split of more than two values)."""


def spark_tree_explainer(predictor: Any, classifier: bool) -> shap.TreeExplainer:
    """shap's TreeExplainer of a Spark decision tree, random forest or GBT model (classifier or regressor).

    Parameters
    ----------
    predictor : pyspark.ml tree model
    classifier : bool
        Whether it is a classifier: random forests and decision trees are then explained in
        probability (their leaves' class frequencies), GBTs in margin (``rawPrediction``).

    Returns
    -------
    shap.TreeExplainer
        Path-dependent TreeSHAP (the trees' own node weights); its values plus ``expected_value``
        add up to the model's probability, margin or prediction.

    Raises
    ------
    UnsupportedTreeError
        On a categorical split of a feature with more than two categories.
    """
    boosted = isinstance(predictor, (GBTClassificationModel, GBTRegressionModel))
    trees = predictor.trees if hasattr(predictor, "trees") else [predictor]
    weights = np.asarray(predictor.treeWeights if hasattr(predictor, "treeWeights") else [1.0], dtype=float)
    scaling = weights if boosted else weights / weights.sum()  # GBT: weighted sum; forests: weighted mean
    frequencies = classifier and not boosted
    roots = [tree._java_obj.rootNode() for tree in trees]
    model = {
        "trees": [_tree(root, frequencies, scale) for root, scale in zip(roots, scaling, strict=True)],
        "tree_output": "probability" if frequencies else "raw_value",
        "input_dtype": np.float64,
        "internal_dtype": np.float64,
        "base_offset": 0.0,
    }
    return shap.TreeExplainer(model)


def _tree(root: Any, frequencies: bool, scale: float) -> dict[str, np.ndarray]:
    """One tree's arrays in shap's dict format, nodes in depth-first order."""
    left, right, features, thresholds, values, weights = [], [], [], [], [], []
    pending = [(root, None, None)]  # (node, its parent's position, whether it is the parent's left child)
    while pending:
        node, parent, is_left = pending.pop()
        position = len(features)
        if parent is not None:
            (left if is_left else right)[parent] = position
        stats = node.impurityStats()
        weights.append(stats.count())
        values.append(_normalized(list(stats.stats())) if frequencies else [node.prediction()])
        left.append(_LEAF)
        right.append(_LEAF)
        if node.subtreeDepth() == 0:
            features.append(-2)
            thresholds.append(0.0)
            continue
        feature, threshold, swapped = _split(node.split())
        features.append(feature)
        thresholds.append(threshold)
        first, second = (node.rightChild(), node.leftChild()) if swapped else (node.leftChild(), node.rightChild())
        pending.extend([(second, position, False), (first, position, True)])
    children_left = np.asarray(left, dtype=np.int32)
    return {
        "children_left": children_left,
        "children_right": np.asarray(right, dtype=np.int32),
        "children_default": children_left,  # Spark's trees see no missing values
        "features": np.asarray(features, dtype=np.int32),
        "thresholds": np.asarray(thresholds, dtype=np.float64),
        "values": np.asarray(values, dtype=np.float64) * scale,
        "node_sample_weight": np.asarray(weights, dtype=np.float64),
    }


def _split(split: Any) -> tuple[int, float, bool]:
    """(feature, threshold, children swapped) of a split, where values at or below the threshold go left."""
    feature = int(split.featureIndex())
    if split.getClass().getSimpleName() == "ContinuousSplit":
        return feature, float(split.threshold()), False
    categories = int(split.numCategories())
    if categories > 2:
        raise UnsupportedTreeError(
            f"a categorical split of feature {feature} with {categories} categories (shap's TreeSHAP takes only "
            "thresholds; one-hot encode the column, or leave it numeric)"
        )
    left_categories = list(split.leftCategories())
    return feature, 0.5, left_categories == [1.0]  # category 0 left: x <= 0.5; category 1 left: swapped


def _normalized(stats: list[float]) -> list[float]:
    total = sum(stats)
    return [count / total for count in stats] if total else stats

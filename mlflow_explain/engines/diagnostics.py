"""Findings a debugger wants from one explanation (no MLflow): target leakage, noise, disagreement.

Each finding is a small record with a kind, a severity, the features involved, a value and one
readable sentence; they go into summary.json and the report. The rules live beside this module:
target leakage in ``leakage.py`` (a warning, told apart from a strong honest feature, which is
``dominant_feature`` information), candidates to drop and clusters of correlated features in
``redundancy.py``.

The permutation-vs-SHAP disagreement ranks only the features above noise (permutation importance
more than ``NOISE_STDS`` standard deviations over the repeats above zero and at least ``NOISE_SHARE``
of the largest): features the model does not use tie near zero in both methods, and their order is
noise (22 such features made a healthy model's rankings "disagree"). A disagreement of fewer than
``DISAGREEMENT_MIN_FEATURES`` ranked features is information, not a warning: among four features two
swaps of neighbours already make Spearman 0.4.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.stats import spearmanr

from ..results import Explanation, Finding
from .leakage import leakage_findings
from .redundancy import NOISE_STDS, redundancy_findings

DOMINANT_SHARE = 0.5  # one feature holding more than this share of the importance is worth saying
DISAGREEMENT_BELOW = 0.5  # Spearman correlation of the two rankings under which they disagree...
DISAGREEMENT_MIN_FEATURES = 5  # ...when at least this many features are ranked (4 give Spearman in steps of 0.2)
NOISE_SHARE = 0.01  # above noise: more than NOISE_STDS std over zero, and at least this share of the largest


def diagnose(explanation: Explanation, X: pd.DataFrame, y: np.ndarray | None = None) -> list[Finding]:
    """Every finding for ``explanation`` computed on validation rows ``X`` (raw columns) and their target ``y``.

    Without ``y``, with a target of several columns (a multi-output regressor) or with fewer rows than
    folds there is no leakage check.
    """
    importances = _importances(explanation)
    leaks = [] if y is None or np.ndim(y) != 1 else leakage_findings(explanation.task, importances, X, np.asarray(y))
    leaked = {feature for finding in leaks for feature in finding.features}
    findings = list(leaks)
    for method, importance in importances.items():
        findings += [finding for finding in _dominant(method, importance) if finding.features[0] not in leaked]
    findings += _disagreement(explanation, importances)
    findings += redundancy_findings(explanation, X)
    return findings


def _importances(explanation: Explanation) -> dict[str, pd.Series]:
    """Importance per feature of each method: primary-scorer permutation importance and mean |SHAP| (all outputs)."""
    series = {}
    permutation, shap = explanation.permutation, explanation.shap
    if permutation is not None and permutation.feature_names:
        series["permutation"] = pd.Series(permutation.mean(permutation.primary_scorer), index=permutation.feature_names)
    if shap is not None and shap.feature_names:
        series["shap"] = pd.Series(shap.mean_abs().mean(axis=1), index=shap.feature_names)
    return series


def _dominant(method: str, importance: pd.Series) -> list[Finding]:
    positive = importance.clip(lower=0)
    if positive.sum() <= 0 or len(positive) < 2:
        return []
    share = positive / positive.sum()
    top = share.idxmax()
    if share[top] <= DOMINANT_SHARE:
        return []
    label = "permutation importance" if method == "permutation" else "mean |SHAP value|"
    return [
        Finding(
            "dominant_feature",
            "info",
            (top,),
            float(share[top]),
            f"'{top}' carries {share[top]:.0%} of the {label}; on its own it does not predict the target "
            "nearly perfectly (no sign of target leakage, see target_leakage).",
        )
    ]


def _disagreement(explanation: Explanation, importances: dict[str, pd.Series]) -> list[Finding]:
    """How the two rankings agree on the features above noise (ties near zero are noise, not disagreement)."""
    if len(importances) < 2:
        return []
    permutation, shap = importances["permutation"], importances["shap"]
    shared = permutation.index.intersection(shap.index)
    above = shared.intersection(above_noise(explanation))
    if len(above) < 3:
        return []
    rho = float(spearmanr(permutation[above], shap[above]).statistic)
    if np.isnan(rho):
        return []
    disagree = rho < DISAGREEMENT_BELOW
    alarm = disagree and len(above) >= DISAGREEMENT_MIN_FEATURES
    verdict = "agree" if not disagree else ("disagree" if alarm else "differ")
    few = disagree and not alarm
    caveat = f", too few features to call it a disagreement (under {DISAGREEMENT_MIN_FEATURES})" if few else ""
    return [
        Finding(
            "method_disagreement",
            "warning" if alarm else "info",
            tuple(above),
            rho,
            # round(...) + 0.0 turns a -0.00 into 0.00: no signed zero reaches the reader
            f"Permutation importance and mean |SHAP| rankings of the {len(above)} features above noise "
            f"{verdict} (Spearman {round(rho, 2) + 0.0:.2f}{caveat}; {len(shared) - len(above)} "
            "features at noise level not ranked).",
        )
    ]


def above_noise(explanation: Explanation) -> pd.Index:
    """Features whose primary-scorer permutation importance is above noise.

    Above noise: more than ``NOISE_STDS`` std over the repeats above zero, and at least ``NOISE_SHARE``
    of the largest importance.
    """
    result = explanation.permutation
    mean, std = result.mean(result.primary_scorer), result.std(result.primary_scorer)
    floor = NOISE_SHARE * max(float(mean.max()), 0.0) if len(mean) else 0.0
    return pd.Index(result.feature_names)[(mean > 0) & (mean > NOISE_STDS * std) & (mean >= floor)]

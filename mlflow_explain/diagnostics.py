"""Findings a debugger wants from one explanation (no MLflow): leakage suspects, noise, disagreement.

Each finding is a small record with a kind, a severity, the features involved, a value and one
readable sentence; they go into summary.json and the report.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.stats import spearmanr

from .results import Explanation, Finding

DOMINANT_SHARE = 0.5  # one feature holding more than this share of the importance is suspicious
DISAGREEMENT_BELOW = 0.5  # Spearman correlation of the two rankings under which they disagree
CORRELATED_ABOVE = 0.9  # |Pearson r| above which two features can split importance between them
_CORRELATION_ROWS = 5000
_PAIRS_SHOWN = 5


def diagnose(explanation: Explanation, X: pd.DataFrame) -> list[Finding]:
    """Every finding for ``explanation`` computed on validation rows ``X`` (raw columns)."""
    findings = []
    importances = _importances(explanation)
    for method, importance in importances.items():
        findings += _dominant(method, importance)
    if explanation.permutation is not None:
        findings += _noise(explanation)
    findings += _disagreement(importances)
    findings += _correlated(X)
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
            "warning",
            (top,),
            float(share[top]),
            f"'{top}' carries {share[top]:.0%} of the {label}: check it for target leakage or an ID column.",
        )
    ]


def _noise(explanation: Explanation) -> list[Finding]:
    result = explanation.permutation
    mean = result.mean(result.primary_scorer)
    noise = tuple(name for name, value in zip(result.feature_names, mean, strict=True) if value <= 0)
    if not noise:
        return []
    shown = ", ".join(f"'{name}'" for name in noise[:10]) + (" ..." if len(noise) > 10 else "")
    return [
        Finding(
            "noise_features",
            "info",
            noise,
            float(len(noise)),
            f"{len(noise)} feature(s) with zero or negative permutation importance ({shown}): "
            "shuffling them does not hurt the score; candidates to drop.",
        )
    ]


def _disagreement(importances: dict[str, pd.Series]) -> list[Finding]:
    if len(importances) < 2:
        return []
    permutation, shap = importances["permutation"], importances["shap"]
    shared = permutation.index.intersection(shap.index)
    if len(shared) < 3:
        return []
    rho = float(spearmanr(permutation[shared], shap[shared]).statistic)
    if np.isnan(rho):
        return []
    severity = "warning" if rho < DISAGREEMENT_BELOW else "info"
    verdict = "disagree" if rho < DISAGREEMENT_BELOW else "agree"
    return [
        Finding(
            "method_disagreement",
            severity,
            tuple(shared),
            rho,
            f"Permutation importance and mean |SHAP| rankings {verdict} (Spearman {rho:.2f}).",
        )
    ]


def _correlated(X: pd.DataFrame) -> list[Finding]:
    numeric = X.select_dtypes("number").iloc[:_CORRELATION_ROWS]
    numeric = numeric.loc[:, numeric.nunique() > 1]
    if numeric.shape[1] < 2:
        return []
    correlation = numeric.corr().to_numpy()
    names = [str(name) for name in numeric.columns]
    pairs = sorted(
        (
            (abs(correlation[i, j]), correlation[i, j], names[i], names[j])
            for i, j in zip(*np.triu_indices(len(names), k=1), strict=True)
            if abs(correlation[i, j]) > CORRELATED_ABOVE
        ),
        reverse=True,
    )
    if not pairs:
        return []
    shown = "; ".join(f"'{a}' and '{b}' (r = {r:.2f})" for _, r, a, b in pairs[:_PAIRS_SHOWN])
    more = f"; and {len(pairs) - _PAIRS_SHOWN} more" if len(pairs) > _PAIRS_SHOWN else ""
    features = tuple(dict.fromkeys(name for _, _, a, b in pairs for name in (a, b)))
    return [
        Finding(
            "correlated_features",
            "info",
            features,
            float(len(pairs)),
            f"{len(pairs)} correlated feature pair(s), |r| > {CORRELATED_ABOVE}: {shown}{more}. Shuffling one "
            "feature of a pair leaves the other, so permutation importance may be split between them.",
        )
    ]

"""Exceptions raised by mlflow_explain: one sentence naming the problem; and the wording such sentences share."""

from __future__ import annotations

import difflib
from collections.abc import Sequence

MAX_LISTED = 40  # names listed in a message before the rest are counted ("and N more")


class ExplainError(Exception):
    """Base class of every error mlflow_explain raises on purpose."""


class InvalidInputError(ExplainError, ValueError):
    """The model, the validation data or the target cannot be explained as given."""


class ConfigError(ExplainError, ValueError):
    """The configuration has an unknown key or a value of the wrong type or range."""


class MissingDependencyError(ExplainError, ImportError):
    """An optional dependency that the requested explanation needs is not installed."""


def listed(names: Sequence[object], limit: int = MAX_LISTED) -> str:
    """``names`` comma-separated: all of them, or the first ``limit`` and "and N more".

    Examples
    --------
    >>> listed(["a", "b", "c"], limit=2)
    'a, b and 1 more'
    """
    shown = ", ".join(map(str, names[:limit]))
    return shown if len(names) <= limit else f"{shown} and {len(names) - limit} more"


def did_you_mean(name: str, candidates: Sequence[object]) -> str:
    """A hint naming the candidates closest to a misspelt ``name`` (``difflib``), or "" when none is close.

    Examples
    --------
    >>> did_you_mean("mean radius", ["mean_radius", "mean_texture"])
    " (did you mean 'mean_radius'?)"
    """
    close = difflib.get_close_matches(str(name), [str(candidate) for candidate in candidates], n=3, cutoff=0.6)
    if not close:
        return ""
    return f" (did you mean {' or '.join(repr(match) for match in close)}?)"

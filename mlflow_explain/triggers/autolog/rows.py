"""The validation rows autolog explains a fit on, and where they come from."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from typing import Any, NamedTuple

from ...errors import InvalidInputError


class Rows(NamedTuple):
    """Validation rows: ``X``, the target ``y`` (None when ``X`` is a file or frame holding the target column) and
    the row weights ``sample_weight`` (None: unweighted)."""

    X: Any
    y: Any = None
    sample_weight: Any = None


def as_rows(value: Any, name: str) -> Rows | None:
    """``value``, an (X, y) or (X, y, sample_weight) tuple given as ``name``, as Rows; None stays None.

    Raises
    ------
    InvalidInputError
        When ``value`` is not a tuple (or list) of two or three items.
    """
    if value is None:
        return None
    if not isinstance(value, (tuple, list)) or len(value) not in (2, 3):
        sized = isinstance(value, (tuple, list))
        shape = f"a {type(value).__name__} of {len(value)} items" if sized else f"a {type(value).__name__}"
        raise InvalidInputError(
            f"{name} must be an (X, y) or (X, y, sample_weight) tuple, not {shape}; "
            "name the target column of a frame with validation.target and pass (X, None)."
        )
    return Rows(*value)


@dataclasses.dataclass
class ValidationRows:
    """The rows the user gave: for one run, for the next run, for every run.

    In order: rows set for the run (``set_validation_data`` inside it), rows set outside any run
    (for the next explained run only, which keeps them), rows given to ``autolog()``, the
    validation rows passed to ``fit`` (an evaluation set, Lightning's validation loader), then the
    config's ``validation.path``.
    """

    every_run: Rows | None = None
    next_run: Rows | None = None
    run_id: str | None = None
    for_run: Rows | None = None

    def set(self, rows: Rows, run_id: str | None) -> None:
        """Rows for run ``run_id``, or for the next run when it is None."""
        if run_id is None:
            self.next_run = rows
        else:
            self.run_id, self.for_run = run_id, rows

    def choose(
        self, run_id: str | None, rows_of_fit: Callable[[], Rows | None], validation_path: str | None
    ) -> Rows | None:
        """The rows to explain a fit of run ``run_id`` (None: a run not created yet) on, or None.

        ``rows_of_fit`` reads the rows passed to ``fit``; it is called only when the user gave none.
        """
        if run_id is not None and run_id == self.run_id:
            return self.for_run
        if self.next_run is not None:
            return self.next_run
        if self.every_run is not None:
            return self.every_run
        passed = rows_of_fit()
        if passed is not None:
            return Rows(*passed)
        return Rows(validation_path) if validation_path else None

    def bind(self, run_id: str) -> None:
        """Run ``run_id`` is explained: rows set for the next run become its own."""
        if self.next_run is not None and run_id != self.run_id:
            self.run_id, self.for_run, self.next_run = run_id, self.next_run, None


def evaluation_rows(fit_kwargs: dict) -> Rows | None:
    """The last evaluation set passed to ``fit``, with its weights when given, or None.

    ``eval_set`` as XGBoost and LightGBM take it (a list of (X, y) pairs) or as one bare (X, y)
    pair; or LightGBM's ``eval_X`` and ``eval_y`` (one of each, or tuples of them). The weights are
    XGBoost's ``sample_weight_eval_set`` or LightGBM's ``eval_sample_weight`` (one per evaluation set).
    """
    weights = fit_kwargs.get("sample_weight_eval_set") or fit_kwargs.get("eval_sample_weight")
    weight = weights[-1] if isinstance(weights, (list, tuple)) else weights
    if fit_kwargs.get("eval_X") is not None:
        return Rows(_last(fit_kwargs["eval_X"]), _last(fit_kwargs.get("eval_y")), weight)
    eval_set = fit_kwargs.get("eval_set")
    if not isinstance(eval_set, (list, tuple)) or not eval_set:
        return None
    if isinstance(eval_set, tuple) and len(eval_set) == 2 and not isinstance(eval_set[0], tuple):
        return Rows(eval_set[0], eval_set[1], weight)
    X, y = eval_set[-1][:2]
    return Rows(X, y, weight)


def _last(value: Any) -> Any:
    return value[-1] if isinstance(value, tuple) else value


_NO_ROWS_SAID: set[str] = set()  # the reasons a fit went unexplained for want of rows, said since autolog() was called


def say_no_rows_once(log: logging.Logger, message: str, reason: str) -> None:
    """``message`` (a %-format of ``reason``) at WARNING on ``log``, once per reason until :func:`forget_said`."""
    if reason not in _NO_ROWS_SAID:
        _NO_ROWS_SAID.add(reason)
        log.warning(message, reason)


def forget_said() -> None:
    """Let every reason be said again (a new ``autolog()`` call)."""
    _NO_ROWS_SAID.clear()

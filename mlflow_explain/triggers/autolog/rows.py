"""The validation rows autolog explains a fit on, and where they come from."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

Rows = tuple[Any, Any]  # (X, y); y None when X is a file or frame holding the target column


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
            return passed
        return (validation_path, None) if validation_path else None

    def bind(self, run_id: str) -> None:
        """Run ``run_id`` is explained: rows set for the next run become its own."""
        if self.next_run is not None and run_id != self.run_id:
            self.run_id, self.for_run, self.next_run = run_id, self.next_run, None


def evaluation_rows(fit_kwargs: dict) -> Rows | None:
    """The last evaluation set passed to ``fit``, or None.

    ``eval_set`` as XGBoost and LightGBM take it (a list of (X, y) pairs) or as one bare (X, y)
    pair; or LightGBM's ``eval_X`` and ``eval_y`` (one of each, or tuples of them).
    """
    if fit_kwargs.get("eval_X") is not None:
        return _last(fit_kwargs["eval_X"]), _last(fit_kwargs.get("eval_y"))
    eval_set = fit_kwargs.get("eval_set")
    if not isinstance(eval_set, (list, tuple)) or not eval_set:
        return None
    if isinstance(eval_set, tuple) and len(eval_set) == 2 and not isinstance(eval_set[0], tuple):
        return eval_set[0], eval_set[1]
    X, y = eval_set[-1][:2]
    return X, y


def _last(value: Any) -> Any:
    return value[-1] if isinstance(value, tuple) else value

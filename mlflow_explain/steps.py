"""How each step of an explanation is timed and guarded: shared by the engines and the output layer.

A step (a method, the plots, the report) runs inside :class:`timed`, which adds its seconds to
``explanation.timings[name]``, and through :func:`guarded`, which records a failure in
``explanation.errors[name]`` (its traceback in ``explanation.tracebacks[name]``, for error.txt)
instead of breaking the caller (unless ``on_error`` is ``raise``). A failure is one line at WARNING,
its traceback at DEBUG.
"""

from __future__ import annotations

import logging
import time
import traceback
from collections.abc import Callable
from typing import Any

from .results import Explanation

logger = logging.getLogger(__name__)


def guarded(
    explanation: Explanation,
    step: str,
    on_error: str,
    function: Callable,
    *args: Any,
    passthrough: tuple[type[Exception], ...] = (),
) -> Any:
    """Call ``function``; on failure record the error under ``step`` and return None, or re-raise.

    Exceptions of the ``passthrough`` types (such as bad input found by the method) always propagate.
    """
    try:
        return function(*args)
    except passthrough:
        raise
    except Exception as err:
        if on_error == "raise":
            raise
        explanation.errors[step] = one_line(err)
        explanation.tracebacks[step] = traceback.format_exc()
        logger.warning("mlflow_explain: %s failed: %s", step, explanation.errors[step])
        logger.debug("mlflow_explain: %s failed:\n%s", step, explanation.tracebacks[step])
        return None


def one_line(err: BaseException) -> str:
    """``err`` as one line: its type and its message, whitespace (newlines included) collapsed."""
    return " ".join(f"{type(err).__name__}: {err}".split())


class timed:
    """Context manager adding the seconds spent inside it to ``explanation.timings[name]``."""

    def __init__(self, explanation: Explanation, name: str):
        self.explanation, self.name = explanation, name

    def __enter__(self) -> None:
        self.start = time.perf_counter()

    def __exit__(self, *exc_info: Any) -> None:
        elapsed = time.perf_counter() - self.start
        self.explanation.timings[self.name] = self.explanation.timings.get(self.name, 0.0) + elapsed

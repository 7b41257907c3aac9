"""The engine interface, and the plumbing every engine shares (no MLflow).

An engine turns one request (a model, what to explain it on, the config) into an
:class:`~mlflow_explain.results.Explanation`: ``engine.compute(request)``. It names its steps
after the methods they run (``permutation``, ``shap``, ``gradcam``: each result lands in
``explanation.results`` under that name) and hands them to :func:`run_steps`, which times and
guards each one and runs the diagnostics; the explanation
itself comes from :func:`new_explanation`. What happens next (drift, artifacts, logging) is the
same for every engine: :func:`mlflow_explain.publish.flow.explain_with`.

Engines: :class:`~mlflow_explain.engines.tabular.TabularEngine` (tables, in process),
:class:`~mlflow_explain.engines.image.ImageEngine` (Grad-CAM) and
:class:`~mlflow_explain.spark.engine.SparkEngine` (a Spark DataFrame, on the executors).
A new engine is a request dataclass deriving from :class:`ExplainRequest`, a class whose
``compute`` checks the request, maps its step names to callables and returns
``run_steps(new_explanation(...), steps, ...)``, and a public function that builds the request
and calls ``explain_with(engine, request, run_id, started)``.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib.metadata
import logging
import platform
from collections.abc import Callable, Mapping
from typing import Any, Protocol, TypeVar

import numpy as np
import pandas as pd

from ..config import ExplainConfig
from ..models import is_torch_module, model_details, model_family, model_name, user_model
from ..results import Explanation, Task
from ..steps import guarded, timed
from .diagnostics import diagnose

logger = logging.getLogger(__name__)

_PACKAGES = ("mlflow_explain", "mlflow", "scikit-learn", "shap", "numpy", "pandas", "matplotlib")


@dataclasses.dataclass
class ExplainRequest:
    """What every engine's request holds: the fitted model and the config; each engine adds its data."""

    model: Any
    config: ExplainConfig


RequestT = TypeVar("RequestT", bound=ExplainRequest, contravariant=True)


class Engine(Protocol[RequestT]):
    """Computes an explanation of one request, without MLflow."""

    def compute(self, request: RequestT) -> Explanation:
        """Every enabled method's result, timings and diagnostics; a failing method is recorded in ``errors``."""
        ...


def new_explanation(
    request: ExplainRequest, task: Task, feature_names: list[str], n_rows: int, extra_packages: tuple[str, ...] = ()
) -> Explanation:
    """An empty explanation of ``request``: its task, features, rows, config and the package versions."""
    return Explanation(
        task=task,
        feature_names=feature_names,
        n_rows=n_rows,
        config=request.config.to_dict(),
        versions=package_versions(request.model, extra_packages),
        model_type=model_name(request.model),
        model_family=model_family(request.model),
        model_details=model_details(request.model),
    )


def run_steps(
    explanation: Explanation,
    steps: Mapping[str, Callable[[], Any]],
    on_error: str,
    *,
    rows: Callable[[], pd.DataFrame] | None = None,
    target: Callable[[], np.ndarray] | None = None,
    passthrough: tuple[type[Exception], ...] = (),
) -> Explanation:
    """Run each step, timed and guarded under its name, into ``explanation.<name>``; then the diagnostics.

    Parameters
    ----------
    explanation : Explanation
        Receives each step's result in ``results`` under the step's name (nothing when it failed).
    steps : mapping of str to callable
        The enabled steps in order, each called without arguments.
    on_error : {"warn", "raise"}
        ``warn`` records a failing step in ``explanation.errors`` and goes on; ``raise`` re-raises.
    rows : callable, default=None
        Returns the rows (a frame of raw features) the diagnostics look at; they run when given and
        a tabular method computed a result.
    target : callable, default=None
        Returns the target of those rows, for the diagnostics that need it (target leakage).
    passthrough : tuple of exception types, default=()
        Errors that always propagate (such as bad input found by a step).

    Returns
    -------
    Explanation
        ``explanation``, filled in.
    """
    for name, step in steps.items():
        with timed(explanation, name):
            result = guarded(explanation, name, on_error, step, passthrough=passthrough)
        if result is not None:
            explanation.results[name] = result
    if rows is not None and explanation.tabular_results:
        findings = guarded(
            explanation,
            "diagnostics",
            on_error,
            lambda: diagnose(explanation, rows(), None if target is None else target()),
        )
        explanation.diagnostics = findings or []
    return explanation


def package_versions(model: Any, extra: tuple[str, ...] = ()) -> dict[str, str]:
    """Versions of Python, of the packages that shape the results (and ``extra``), and of the model's library."""
    names = list(_PACKAGES) + list(extra)
    user = user_model(model)
    library = type(user).__module__.split(".")[0]
    if library != "keras" and is_torch_module(user):
        library = "torch"
    if library in ("xgboost", "lightgbm", "catboost", "torch", "keras"):
        names.append(library)
    versions = {"python": platform.python_version()}
    for name in names:
        version = _installed_version(name)
        if version is not None:
            versions[name] = version
    return versions


@functools.cache
def _installed_version(name: str) -> str | None:
    """The installed version of a distribution, read once per process (a metadata lookup costs milliseconds)."""
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None

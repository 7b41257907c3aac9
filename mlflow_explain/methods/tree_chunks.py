"""shap's TreeExplainer over chunks of rows: on every core for scikit-learn forests, with a progress bar.

shap computes TreeSHAP of scikit-learn tree ensembles in its own C code, on one thread that holds
the GIL. So the rows are split into chunks and, when the work is long enough to pay for worker
processes, the chunks are explained by joblib's processes: the explainer is written once to a
temporary file that each worker maps into memory once (sent with every chunk, a deep forest's
explainer costs about a second per chunk). The values of a row depend on that row only: the chunks put together are
the values of one call, bit for bit. XGBoost, LightGBM and CatBoost models are explained by their
library's own multithreaded TreeSHAP in one call. A deadline stops the work between chunks.
"""

from __future__ import annotations

import dataclasses
import tempfile
import time
from pathlib import Path
from typing import Any

import joblib
import numpy as np
from joblib import Parallel, delayed, effective_n_jobs
from tqdm.auto import tqdm

from ..data import take_rows

PROBE_ROWS = 4  # explained first, in this process: their time decides whether worker processes pay
PARALLEL_AFTER_S = 10.0  # the rest goes to worker processes when estimated longer (they take seconds to start)
CHUNKS = 16  # at least: the progress bar moves, slow workers are evened out and a deadline is overrun by little


@dataclasses.dataclass(frozen=True)
class TreeTiming:
    """What the TreeSHAP of some rows took: rows explained (of those asked), wall seconds, processes used."""

    rows: int
    seconds: float
    workers: int
    asked: int

    def __str__(self) -> str:
        cores = "1 core" if self.workers == 1 else f"{self.workers} cores"
        done = f"{self.rows:,} rows" if self.rows == self.asked else f"{self.rows:,} of {self.asked:,} rows"
        stopped = "" if self.rows == self.asked else " (stopped at the time limit)"
        return f"{done} in {self.seconds:.1f} s on {cores}{stopped}"


def tree_shap_values(
    explainer: Any, rows: Any, n_jobs: int = -1, deadline: float | None = None
) -> tuple[np.ndarray, np.ndarray, TreeTiming]:
    """SHAP values of ``rows`` from a shap ``TreeExplainer``, chunked over ``n_jobs`` processes when it pays.

    Parameters
    ----------
    explainer : shap.TreeExplainer
    rows : DataFrame or ndarray
        Rows as the explained model takes them.
    n_jobs : int, default=-1
        Worker processes at most (-1: all cores); 1 explains every chunk in this process.
    deadline : float, default=None
        ``time.perf_counter()`` value after which no further chunk is explained. The chunks are taken
        in a seeded random order of the rows, so the rows done by then are a random sample of them.

    Returns
    -------
    (ndarray, ndarray, TreeTiming)
        The values of the rows done, as ``explainer.shap_values`` gives them (classes on the last
        axis), in the order of ``rows``; the sorted positions of those rows in ``rows``; the timing.
    """
    started = time.perf_counter()
    n_rows = rows.shape[0]
    natively_threaded = getattr(explainer.model, "model_type", "internal") != "internal"
    if natively_threaded or n_rows <= PROBE_ROWS:
        values = _values(explainer, rows)
        return values, np.arange(n_rows), TreeTiming(n_rows, time.perf_counter() - started, 1, n_rows)
    order = np.random.RandomState(0).permutation(n_rows)
    with tqdm(total=n_rows, desc="SHAP (TreeExplainer)", unit="row", disable=None, leave=False) as progress:
        parts = [_values(explainer, take_rows(rows, order[:PROBE_ROWS]))]
        progress.update(PROBE_ROWS)
        rest_s = (time.perf_counter() - started) / PROBE_ROWS * (n_rows - PROBE_ROWS)
        workers = effective_n_jobs(n_jobs) if rest_s > PARALLEL_AFTER_S else 1
        chunks = np.array_split(order[PROBE_ROWS:], min(max(CHUNKS, 4 * workers), n_rows - PROBE_ROWS))
        with tempfile.TemporaryDirectory(prefix="mlflow_explain_tree_") as folder:
            if workers == 1:
                explained = (_values(explainer, take_rows(rows, chunk)) for chunk in chunks)
            else:
                path = str(Path(folder) / "explainer.joblib")
                joblib.dump(explainer, path)
                explained = Parallel(n_jobs=workers, return_as="generator")(
                    delayed(_values_from_file)(path, take_rows(rows, chunk)) for chunk in chunks
                )
            for values in explained:
                parts.append(values)
                progress.update(len(values))
                if deadline is not None and time.perf_counter() > deadline and len(parts) <= len(chunks):
                    explained.close()  # joblib cancels the chunks not started
                    break
    done = order[: sum(len(part) for part in parts)]
    by_position = np.argsort(done)
    values = np.concatenate(parts)[by_position]
    timing = TreeTiming(len(done), time.perf_counter() - started, workers, n_rows)
    return values, done[by_position], timing


_LOADED: dict[str, Any] = {}  # in a worker process: the explainer of the current job, by file


def _values_from_file(path: str, rows: Any) -> np.ndarray:
    """``_values`` with the explainer in file ``path``, mapped into memory once per worker process and job."""
    if path not in _LOADED:
        _LOADED.clear()
        _LOADED[path] = joblib.load(path, mmap_mode="r")
    return _values(_LOADED[path], rows)


def _values(explainer: Any, rows: Any) -> np.ndarray:
    """``explainer.shap_values(rows)`` as one array (a list of per-class arrays stacked on the last axis)."""
    values = explainer.shap_values(rows, check_additivity=False)
    return np.stack(values, axis=-1) if isinstance(values, list) else np.asarray(values)

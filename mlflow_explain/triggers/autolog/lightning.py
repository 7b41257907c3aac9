"""Lightning's ``Trainer.fit`` under autolog: which fits count, the rows they validated on, how they are explained.

``install`` routes ``Trainer.fit`` of ``lightning.pytorch`` (and of ``pytorch_lightning``, when that
is installed) through autolog's handler the moment the trainer module is imported, through a
post-import hook: nothing here imports Lightning or PyTorch, and a session that never imports
them pays nothing. The rest is what autolog asks of a fit kind: the module to explain after a
fit (none after a ``fast_dev_run``, an interrupted fit, or on a process other than global rank
zero), the validation rows the fit had (the ``val_dataloaders`` passed to it, else its
datamodule's ``val_dataloader()``), and the explanation itself: tables (n, features) through
``explain`` (permutation importance and SHAP), images (n, channels, height, width) through
``explain_images`` (Grad-CAM).
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from ...config import ExplainConfig
from ...errors import InvalidInputError
from . import patch
from .rows import Rows

logger = logging.getLogger(__name__)

TRAINER_MODULES = ("lightning.pytorch.trainer.trainer", "pytorch_lightning.trainer.trainer")
_LIGHTNING_PACKAGES = frozenset({"lightning", "pytorch_lightning", "lightning_fabric"})
_VAL_DATALOADERS, _DATAMODULE = (2, "val_dataloaders"), (3, "datamodule")  # fit(model, train, val, datamodule)
_IMAGE_DIMENSIONS = 4


def install() -> None:
    """Route each Lightning ``Trainer.fit`` through autolog's handler: now if imported, else once it is."""
    from mlflow.utils.import_hooks import register_post_import_hook

    for name in TRAINER_MODULES:
        register_post_import_hook(_on_trainer_module_imported, name)  # runs at once when already imported


def _on_trainer_module_imported(module: ModuleType) -> None:
    try:
        patch.wrap_fit_of(module.Trainer)
    except Exception:  # never break the user's import of Lightning
        logger.warning("mlflow_explain.autolog: could not patch %s.Trainer.fit.", module.__name__, exc_info=True)


def is_trainer(obj: Any) -> bool:
    """True for a Lightning ``Trainer`` (of either package); imports nothing."""
    for name in TRAINER_MODULES:
        module = sys.modules.get(name)
        if module is not None and isinstance(obj, module.Trainer):
            return True
    return False


def skip_reason(trainer: Any) -> str | None:
    """Why a finished ``Trainer.fit`` is not to be explained, or None when its module is."""
    if getattr(trainer, "fast_dev_run", False):
        return "fast_dev_run is a sanity check of the code, not a training"
    if getattr(trainer, "interrupted", False):
        return "the fit was interrupted"
    if not getattr(trainer, "is_global_zero", True):
        return f"explained on global rank 0 only, this is rank {trainer.global_rank}"
    return None


def fit_rows(trainer: Any, args: tuple, kwargs: dict, config: ExplainConfig) -> Rows | None:
    """The first validation loader's rows: the one passed to ``fit``, else the datamodule's; None without one.

    Reading stops after ``validation.max_rows`` rows of a table or ``gradcam.max_rows`` images
    (the loader's first rows: validation loaders are rarely shuffled).
    """
    loader = _argument(args, kwargs, *_VAL_DATALOADERS)
    if loader is None:
        loader = _datamodule_val_loader(_argument(args, kwargs, *_DATAMODULE) or getattr(trainer, "datamodule", None))
    loader = _first_loader(loader)
    if loader is None:
        return None
    return _read_loader(loader, config)


def _argument(args: tuple, kwargs: dict, position: int, name: str) -> Any:
    """Argument ``name`` of ``Trainer.fit``, at index ``position`` of ``args`` when positional (``model`` is 0)."""
    return args[position] if len(args) > position else kwargs.get(name)


def _datamodule_val_loader(datamodule: Any) -> Any:
    if datamodule is None or not _defines(datamodule, "val_dataloader"):
        return None
    return datamodule.val_dataloader()


def _defines(obj: Any, method: str) -> bool:
    """True when ``obj``'s class, not Lightning's base class, defines ``method`` (Lightning's own one raises)."""
    function = getattr(type(obj), method, None)
    return function is not None and (function.__module__ or "").partition(".")[0] not in _LIGHTNING_PACKAGES


def _first_loader(loaders: Any) -> Any:
    if isinstance(loaders, dict):
        loaders = list(loaders.values())
    if isinstance(loaders, (list, tuple)):
        return loaders[0] if loaders else None
    return loaders


def _read_loader(loader: Any, config: ExplainConfig) -> Rows | None:
    """(X, y) as arrays from the loader's batches (a tensor, or (inputs, targets, ...) sequences); y None without."""
    inputs, targets, n_rows, limit = [], [], 0, None
    for batch in loader:
        X, y = _split_batch(batch)
        if limit is None:
            limit = config.gradcam.max_rows if X.ndim == _IMAGE_DIMENSIONS else config.validation.max_rows
        inputs.append(X)
        if y is not None:
            targets.append(y)
        n_rows += len(X)
        if n_rows >= limit:
            break
    if not inputs:
        return None
    X = np.concatenate(inputs)[:limit]
    y = np.concatenate(targets)[:limit] if len(targets) == len(inputs) else None
    return Rows(X, y)


def _split_batch(batch: Any) -> tuple[np.ndarray, np.ndarray | None]:
    if isinstance(batch, (list, tuple)) and batch:
        return _array(batch[0]), (_array(batch[1]) if len(batch) > 1 else None)
    if hasattr(batch, "shape"):
        return _array(batch), None
    raise InvalidInputError(
        f"Validation batches are {type(batch).__name__}s; autolog reads a tensor or an (inputs, targets) pair "
        "per batch, so give the rows with mlflow_explain.set_validation_data(X, y)."
    )


def _array(value: Any) -> np.ndarray:
    if hasattr(value, "detach"):  # a torch tensor, possibly on a GPU
        value = value.detach().cpu().numpy()
    return np.asarray(value)


def explain_module(module: Any, rows: Rows, config: ExplainConfig, run_id: str, notes: tuple[str, ...] = ()) -> None:
    """Explain a trained module on its validation rows into run ``run_id``: tables with ``explain``, images with
    ``explain_images``; ``notes`` (autolog's decisions) go into a table's ``summary.json``.

    Raises
    ------
    InvalidInputError
        When the rows are neither a table (n, features) nor images (n, channels, height, width).
    """
    X, y = rows.X, rows.y
    if isinstance(X, (str, Path)) or getattr(X, "ndim", None) == 2:
        from ..explain import explain_logged

        explain_logged(module, X, y, sample_weight=rows.sample_weight, config=config, run_id=run_id, notes=notes)
    elif getattr(X, "ndim", None) == _IMAGE_DIMENSIONS:
        from ..explain_images import explain_images

        explain_images(module, X, y, config=config, run_id=run_id)
    else:
        raise InvalidInputError(
            f"Validation inputs of shape {tuple(np.shape(X))} are neither a table (rows, features) nor images "
            f"(images, channels, height, width); autolog explains {type(module).__name__} only on those."
        )

"""What every PyTorch path needs of a module: its device and dtype, and eval mode restored exactly (no MLflow)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

import torch

_MODE_LOCK = threading.Lock()
_MODE_DEPTH: dict[int, tuple[int, list[tuple[torch.nn.Module, bool]]]] = {}


@contextmanager
def evaluation_mode(module: torch.nn.Module) -> Iterator[torch.nn.Module]:
    """``module`` in eval mode inside the block; every submodule's own mode restored after it.

    Nested and concurrent blocks on one module (threads predicting batches) share one switch: the
    first to enter records the modes, the last to leave restores them.
    """
    key = id(module)
    with _MODE_LOCK:
        depth, saved = _MODE_DEPTH.get(key, (0, []))
        if depth == 0:
            saved = [(sub, sub.training) for sub in module.modules()]
            module.eval()
        _MODE_DEPTH[key] = (depth + 1, saved)
    try:
        yield module
    finally:
        with _MODE_LOCK:
            depth, saved = _MODE_DEPTH.pop(key)
            if depth > 1:
                _MODE_DEPTH[key] = (depth - 1, saved)
            else:
                for sub, training in saved:
                    sub.training = training


def module_device(module: torch.nn.Module) -> torch.device:
    """The device of the module's first parameter (or buffer); the CPU for a module that holds none."""
    for tensor in (*module.parameters(), *module.buffers()):
        return tensor.device
    return torch.device("cpu")


def module_dtype(module: torch.nn.Module) -> torch.dtype:
    """The floating dtype of the module's first floating parameter (or buffer); float32 for a module that holds none."""
    for tensor in (*module.parameters(), *module.buffers()):
        if tensor.is_floating_point():
            return tensor.dtype
    return torch.float32

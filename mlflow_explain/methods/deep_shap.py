"""SHAP values of a PyTorch network by DeepLIFT's rescale rule over a background, batched (no MLflow).

Each explained row is paired with every background row; one forward pass over the pairs (the
background's own activations computed once beforehand) and one backward pass per output give,
for every pair, DeepLIFT's attributions of f(row) - f(background row); their mean over the
background is the row's SHAP values (DeepLIFT-SHAP, the values of ``shap.DeepExplainer``). Pairs
go through in chunks sized to a memory budget, on the network's device, in eval mode. A plain
chain (a Sequential of Linear layers and elementwise activations, every scikit-learn MLP) skips
the pass over the pairs: ``deep_shap_chain`` applies the same rule in closed form.

The rescale rule is put into the autograd graph by forward hooks on the network's activation
modules: an activation's output y is replaced by a tensor of the same value whose gradient is
the multiplier (y - y_ref) / (x - x_ref) of the pair (the local gradient where x = x_ref).
Elementwise activations (ReLU, Tanh, Sigmoid, GELU...) and ``Softmax`` (per entry, as shap does)
are covered, in place or reused in several places of the forward; linear layers pass gradients
unchanged. A network holding a module with no rule (a normalization across features, attention,
max-pooling), or whose values miss additivity (a nonlinearity applied as a torch function in the
forward, which no hook sees), is explained by expected gradients instead (``GradientShap``'s rule:
the gradient at seeded random points between the row and each background row, one in each of
``_STRATA`` equal stretches of the segment between them), and the result says why.

Captum's ``DeepLiftShap`` is not used: it runs the forward over twice the pairs once per output,
rejects an activation module used twice in the forward ("A Module ReLU() was detected that does
not contain some of the input/output attributes..."), and normalizes ``Softmax`` multipliers over
the whole batch (a network ending in ``nn.Softmax`` misses additivity by about 0.1).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from .deep_shap_chain import chain_attributions, chain_layers

if TYPE_CHECKING:
    import torch

_PASS_BYTES = 256 * 2**20  # memory one chunk of pairs may take (activations, saved tensors, gradients)
_COPIES_PER_ACTIVATION = 4  # tensors of an activation's size kept per pair: value, saved for backward, rule, gradient
_SMALL_STEP = 1e-6  # |x - x_ref| below this takes the local gradient (shap's DeepExplainer threshold)
_ADDITIVITY_TOLERANCE = 1e-3  # relative gap that means a nonlinearity escaped the rescale rule
_STRATA = 8  # expected-gradients points per (row, background row) pair, one per eighth of the segment


@dataclasses.dataclass
class DeepShapValues:
    """SHAP values of a network: ``values`` (n_rows, n_features, n_outputs), ``base_values`` (n_outputs,).

    ``method`` is "deeplift" or "expected_gradients"; ``fallback_reason`` says why DeepLIFT was not used.
    """

    values: np.ndarray
    base_values: np.ndarray
    method: str
    fallback_reason: str | None = None


def deep_shap_values(module: torch.nn.Module, rows: Any, background: Any, *, random_state: int = 0) -> DeepShapValues:
    """SHAP values of every output of ``module`` on ``rows``: DeepLIFT-SHAP, or expected gradients where it cannot.

    Parameters
    ----------
    module : torch.nn.Module
        A network taking a float tensor of shape (n, n_features) and returning (n,) or (n, n_outputs);
        explained on its own device and in eval mode, each submodule's mode restored afterwards.
    rows : array-like of shape (n_rows, n_features)
        Rows to explain.
    background : array-like of shape (n_background, n_features)
        Background rows; the base values are the mean output over them.
    random_state : int, default=0
        Seed of the expected-gradients points (used only when DeepLIFT cannot explain the network).

    Returns
    -------
    DeepShapValues
        Values whose sum over features plus the base values is the module's output (exactly for DeepLIFT).

    Examples
    --------
    >>> import numpy as np, torch
    >>> net = torch.nn.Sequential(torch.nn.Linear(3, 8), torch.nn.ReLU(), torch.nn.Linear(8, 1))
    >>> X = np.random.RandomState(0).normal(size=(20, 3))
    >>> result = deep_shap_values(net, X[:5], X[5:])
    >>> result.values.shape, result.method
    ((5, 3, 1), 'deeplift')
    """
    import torch

    from .torch_modules import evaluation_mode, module_device, module_dtype

    device, dtype = module_device(module), module_dtype(module)
    x, refs = _tensor(rows, device, dtype), _tensor(background, device, dtype)
    with evaluation_mode(module), torch.enable_grad():
        chunk_rows = _chunk_rows(module, refs)
        problem = _module_without_rule(module)
        if problem is None:
            try:
                values, base = _deeplift(module, x, refs, chunk_rows)
                problem = _additivity_problem(values, base, _outputs(module, x))
            except _ForwardVaries as why:
                problem = str(why)
            if problem is None:
                return DeepShapValues(values, base, "deeplift")
        rng = np.random.RandomState(random_state)
        strata = [_pair_attributions(module, x, refs, chunk_rows, _random_points(rng, k)) for k in range(_STRATA)]
        values = np.mean(strata, axis=0)
        return DeepShapValues(values, _outputs(module, refs).mean(axis=0), "expected_gradients", problem)


def _deeplift(module: torch.nn.Module, x: torch.Tensor, refs: torch.Tensor, chunk_rows: int) -> tuple:
    """DeepLIFT-SHAP values and base values: in closed form for a chain of linear layers and elementwise
    activations (``deep_shap_chain``), else by the rescale rule's hooks over every (row, background row) pair."""
    covered, _ = _rules()
    layers = chain_layers(module, tuple(kind for kind in covered if kind.__name__ != "Softmax"))  # mixes its entries
    if layers is not None:
        values = chain_attributions(layers, x, refs, _PASS_BYTES, _SMALL_STEP)
        return values, _outputs(module, refs).mean(axis=0)
    with _RescaleRule(module, refs) as rule:
        values = _pair_attributions(module, x, refs, chunk_rows, lambda inputs, _: inputs)
    return values, rule.reference_outputs.mean(axis=0)


def module_outputs(module: torch.nn.Module, rows: Any) -> np.ndarray:
    """The module's output on ``rows`` as (n_rows, n_outputs), on its device, in eval mode and without gradients."""
    from .torch_modules import evaluation_mode, module_device, module_dtype

    with evaluation_mode(module):
        return _outputs(module, _tensor(rows, module_device(module), module_dtype(module)))


def _tensor(rows: Any, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    """A copy of the rows as a tensor (the network may not write into the caller's rows, which may be read-only)."""
    import torch

    return torch.tensor(np.asarray(rows, dtype=float), dtype=dtype, device=device)


def _outputs(module: torch.nn.Module, x: torch.Tensor) -> np.ndarray:
    import torch

    with torch.no_grad():
        return _as_2d(module(x)).cpu().numpy().astype(float)


def _as_2d(output: torch.Tensor) -> torch.Tensor:
    return output.reshape(len(output), -1)


def _chunk_rows(module: torch.nn.Module, refs: torch.Tensor) -> int:
    """Explained rows per pass, so that their pairs with every background row fit ``_PASS_BYTES``."""
    counted = [0]

    def count(_module: Any, _inputs: Any, output: Any) -> None:
        if hasattr(output, "numel"):
            counted[0] += output.numel()

    leaves = [sub for sub in module.modules() if not any(True for _ in sub.children())]
    handles = [leaf.register_forward_hook(count) for leaf in leaves]
    try:
        _outputs(module, refs[:1])
    finally:
        for handle in handles:
            handle.remove()
    per_pair = (counted[0] + refs.shape[1]) * refs.element_size() * _COPIES_PER_ACTIVATION
    return max(1, _PASS_BYTES // (per_pair * len(refs)))


def _random_points(rng: np.random.RandomState, stratum: int) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """Expected gradients' points: for each (row, background row) pair, a seeded uniform point between them,
    in the ``stratum``-th of ``_STRATA`` equal stretches of the segment from the background row to the row."""
    import torch

    def point(inputs: torch.Tensor, refs: torch.Tensor) -> torch.Tensor:
        fraction = (stratum + rng.uniform(size=(len(inputs), 1))) / _STRATA
        alpha = torch.as_tensor(fraction, dtype=inputs.dtype, device=inputs.device)
        return refs + alpha * (inputs - refs)

    return point


def _pair_attributions(
    module: torch.nn.Module,
    x: torch.Tensor,
    refs: torch.Tensor,
    chunk_rows: int,
    point: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
) -> np.ndarray:
    """Mean over the background of (row - background row) x gradient at ``point(row, background row)``.

    Pairs are row-major (row i's pairs are i * n_background onwards), the layout ``_RescaleRule``
    relies on. One forward pass per chunk, and one backward pass per output.
    """
    import torch

    n_refs, blocks = len(refs), []
    for start in range(0, len(x), chunk_rows):
        rows = x[start : start + chunk_rows]
        inputs, paired_refs = rows.repeat_interleave(n_refs, dim=0), refs.repeat(len(rows), 1)
        at = point(inputs, paired_refs).detach().requires_grad_()
        output = _as_2d(module(at))
        gradients = [
            torch.autograd.grad(output[:, k].sum(), at, retain_graph=k + 1 < output.shape[1])[0]
            for k in range(output.shape[1])
        ]
        attributions = torch.stack(gradients, dim=-1) * (inputs - paired_refs).unsqueeze(-1)
        blocks.append(attributions.reshape(len(rows), n_refs, *attributions.shape[1:]).mean(dim=1).cpu().numpy())
    return np.concatenate(blocks).astype(float)


def _additivity_problem(values: np.ndarray, base: np.ndarray, outputs: np.ndarray) -> str | None:
    gap = float(np.max(np.abs(values.sum(axis=1) + base - outputs)))
    scale = max(1.0, float(np.max(np.abs(outputs - base))))
    if gap <= _ADDITIVITY_TOLERANCE * scale:
        return None
    return (
        f"DeepLIFT's values miss additivity by {gap:.3g} (outputs spread {scale:.3g}): the forward applies a "
        "nonlinearity that is no torch.nn module (a torch function such as torch.relu), which DeepLIFT cannot see"
    )


def _rules() -> tuple[tuple[type, ...], tuple[type, ...]]:
    """(modules the rescale rule covers, modules no rule here covers), as torch.nn classes."""
    from torch import nn

    covered = (
        *(nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.PReLU, nn.RReLU, nn.ELU, nn.SELU, nn.CELU, nn.GELU, nn.SiLU, nn.Mish),
        *(nn.Sigmoid, nn.Tanh, nn.Softplus, nn.Softsign, nn.Hardtanh, nn.Hardsigmoid, nn.Hardswish, nn.LogSigmoid),
        *(nn.Tanhshrink, nn.Softshrink, nn.Hardshrink, nn.Threshold, nn.Softmax),
    )
    uncovered = ("LayerNorm", "GroupNorm", "RMSNorm", "LocalResponseNorm", "MultiheadAttention", "RNNBase", "Bilinear")
    uncovered += ("LogSoftmax", "Softmin", "Softmax2d", "MaxPool1d", "MaxPool2d", "MaxPool3d", "AdaptiveMaxPool1d")
    uncovered += ("AdaptiveMaxPool2d", "AdaptiveMaxPool3d", "InstanceNorm1d", "InstanceNorm2d", "InstanceNorm3d")
    return covered, tuple(getattr(nn, name) for name in uncovered if hasattr(nn, name))  # RMSNorm: torch >= 2.4


def _module_without_rule(module: torch.nn.Module) -> str | None:
    _, uncovered = _rules()
    for name, sub in module.named_modules():
        if isinstance(sub, uncovered):
            where = f"module {name!r}" if name else "the network itself"
            return f"DeepLIFT has no rule for {type(sub).__name__} ({where}), which mixes features nonlinearly"
    return None


class _ForwardVaries(RuntimeError):
    """The forward calls its activation modules differently for the pairs than for the background."""


class _RescaleRule:
    """Forward hooks that make autograd apply DeepLIFT's rescale rule to every covered activation module.

    On entering, the background goes through the network once and every activation call's input
    and output are kept, in call order (``reference_outputs`` holds the network's outputs). In
    later forward passes over pairs (row-major, see ``_pair_attributions``), call c of the pass
    compares its input x and output y with the kept ones of the pair's background row and returns
    ``y.detach() + (x - x.detach()) * m``: the same value as y, with gradient m = (y - y_ref) / (x - x_ref).
    """

    def __init__(self, module: torch.nn.Module, refs: torch.Tensor):
        self.module, self.refs = module, refs
        self.kept: list[tuple[torch.Tensor, torch.Tensor]] = []
        self.recording, self.call, self.handles, self.pending = True, 0, [], {}
        self.reference_outputs = np.empty(0)

    def __enter__(self) -> _RescaleRule:
        covered, _ = _rules()
        self.handles.append(self.module.register_forward_pre_hook(self._start_pass))
        for sub in self.module.modules():
            if isinstance(sub, covered):
                self.handles.append(sub.register_forward_pre_hook(self._keep_input))
                self.handles.append(sub.register_forward_hook(self._rescale))
        try:
            self.reference_outputs = _outputs(self.module, self.refs)
        except BaseException:
            self.__exit__()
            raise
        self.recording = False
        return self

    def __exit__(self, *_exc: Any) -> None:
        for handle in self.handles:
            handle.remove()
        self.handles, self.kept, self.pending = [], [], {}

    def _start_pass(self, _module: Any, _inputs: Any) -> None:
        self.call = 0

    def _keep_input(self, sub: Any, inputs: tuple) -> tuple | None:
        """The activation's input, kept before an in-place module overwrites it (which then works on a copy)."""
        self.pending[sub] = inputs[0]
        return (inputs[0].clone(), *inputs[1:]) if getattr(sub, "inplace", False) else None

    def _rescale(self, sub: Any, _inputs: tuple, y: torch.Tensor) -> torch.Tensor | None:
        import torch

        x = self.pending.pop(sub)
        if self.recording:
            self.kept.append((x.detach(), y.detach()))
            return None
        if self.call >= len(self.kept) or not _pairs_of(x, self.kept[self.call][0]):
            raise _ForwardVaries(
                "the forward runs its activation modules differently for the explained rows than for the background"
            )
        x_ref, y_ref = self.kept[self.call]
        self.call += 1
        dx, dy = _paired_difference(x.detach(), x_ref), _paired_difference(y.detach(), y_ref)
        small = dx.abs() < _SMALL_STEP
        multiplier = dy / dx.masked_fill(small, 1.0)
        return torch.where(small, y, y.detach() + (x - x.detach()) * multiplier)


def _pairs_of(values: torch.Tensor, refs: torch.Tensor) -> bool:
    """Whether ``values`` can be the (row, background row) pairs of ``refs``: whole blocks of same-shaped rows."""
    return values.shape[1:] == refs.shape[1:] and len(values) % len(refs) == 0


def _paired_difference(values: torch.Tensor, refs: torch.Tensor) -> torch.Tensor:
    """``values`` of each pair (row-major: n_refs consecutive pairs per row) less its background row's, broadcast."""
    return (values.reshape(-1, *refs.shape) - refs).reshape(values.shape)

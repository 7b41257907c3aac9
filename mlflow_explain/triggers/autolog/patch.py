"""Wrapping ``fit`` on the scikit-learn-compatible estimator classes, and unwrapping it exactly.

Every class deriving from scikit-learn's ``BaseEstimator`` (XGBoost's and LightGBM's scikit-learn
models and the user's own estimators included) has the ``fit`` it defines wrapped: the classes
that exist when ``install`` is called, found by walking ``BaseEstimator``'s subclasses (nothing is
imported), and each class defined afterwards, from a ``BaseEstimator.__init_subclass__`` hook.
When scikit-learn is not imported yet, all of that waits until ``sklearn.base`` is. Other classes
(Lightning's ``Trainer``) are wrapped one by one with ``wrap_fit_of``, and training functions
(``xgboost.train``) with ``wrap_function_of``: their wrappers hand each call to ``route`` as a fit.
The subclasses of ``keras.Model``, those defined later included, each get a ``fit`` wrapper of their
own (``wrap_fit_of_subclasses``), so that MLflow's patch of the ``fit`` they inherit runs inside it.

MLflow's autologging patches ``fit`` too (with gorilla): it wraps the ``fit`` it finds and keeps
the one it replaced as ``_gorilla_original_fit``, to put back when it is switched off. So a
wrapper of this module is recognised by identity, never by an attribute (``functools.wraps``
copies attributes onto MLflow's wrapper), and

- a ``fit`` with one of these wrappers anywhere down its ``__wrapped__`` chain is not wrapped again;
- the ``fit`` MLflow keeps aside is wrapped too, so what MLflow puts back is still wrapped;
- ``uninstall`` replaces only its own wrappers (as a class's ``fit`` or as the one MLflow keeps)
  by what they wrap, and never MLflow's; a wrapper left inside MLflow's patch only calls through
  until MLflow is switched off.
"""

from __future__ import annotations

import functools
import inspect
import sys
from collections.abc import Callable, Iterator
from types import FrameType, ModuleType
from typing import Any

Handler = Callable[[Callable, Any, tuple, dict, FrameType], Any]

_KEPT_BY_MLFLOW = "_gorilla_original_fit"  # where MLflow's autologging keeps the fit it replaced
_KEPT_PREFIX = "_gorilla_original_"  # ... and any function it replaced (``xgboost._gorilla_original_train``)
_MAX_CHAIN = 16  # __wrapped__ links followed at most when looking for a wrapper of this module

_handler: Handler | None = None
_wrapper_of: dict[Callable, Callable] = {}  # a wrapped fit -> its wrapper (one per function, reused)
_wrapped_by: dict[Callable, Callable] = {}  # a wrapper -> the fit it wraps
_owners_outside: set[type] = set()  # classes outside BaseEstimator's tree (mixins, Trainer) whose fit was wrapped
_functions_wrapped: set[tuple[ModuleType, str]] = set()  # (module, name) of training functions wrapped
_fits_added: set[type] = set()  # classes given a fit of their own that calls the one they inherit
_fit_per_subclass: set[type] = set()  # bases whose new subclasses get their own fit wrapper (keras.Model)
_previous_hook: Any = None  # BaseEstimator's own __init_subclass__, if it had one


def install(handler: Handler) -> None:
    """Route every estimator's ``fit`` through ``handler(original, estimator, args, kwargs, caller_frame)``.

    ``handler`` must call ``original(estimator, *args, **kwargs)`` and return its result.
    """
    global _handler
    _handler = handler
    base = sys.modules.get("sklearn.base")
    if base is None:
        from mlflow.utils.import_hooks import register_post_import_hook

        register_post_import_hook(_on_sklearn_base_imported, "sklearn.base")
    else:
        _wrap_estimators(base.BaseEstimator)


def wrap_fit_of(cls: type, inherited: bool = False) -> None:
    """Route ``cls``'s own ``fit`` through the handler too, for a class outside scikit-learn (Lightning's Trainer).

    With ``inherited``, the ``fit`` ``cls`` inherits is wrapped where it is defined, so that it stays
    wrapped when MLflow's patch of ``cls.fit`` is removed (``keras.Model`` inherits its ``fit`` from
    the backend's trainer, and MLflow deletes its patch rather than putting anything back). Nothing
    happens while uninstalled; ``uninstall`` puts them back like the others.
    """
    if _handler is None:
        return
    owners = [cls]
    if inherited:
        owners += [next(klass for klass in cls.__mro__[1:] if "fit" in klass.__dict__)]
    for owner in owners:
        _owners_outside.add(owner)
        _wrap_own(owner)


def wrap_fit_of_subclasses(base: type) -> None:
    """Route the ``fit`` of every class deriving from ``base`` (now, and defined later: a ``base.__init_subclass__``
    hook) through the handler, outside any patch of ``base.fit``.

    A subclass that inherits its ``fit`` is given one of its own, wrapped, that calls the inherited
    ``fit`` looked up at call time; so a patch MLflow puts on ``base.fit`` later (``keras.Model.fit``)
    runs inside this wrapper, and the handler sees the fit after MLflow's patch has finished (its
    model logged). ``base`` must not define ``__init_subclass__`` itself (``keras.Model`` does not).
    Nothing happens while uninstalled; ``uninstall`` removes the added ``fit`` methods and the hook.
    """
    if _handler is None:
        return
    for cls in _subclasses(base):
        _wrap_subclass(cls)
    if base.__dict__.get("__init_subclass__") is not _SUBCLASS_FIT_HOOK:
        base.__init_subclass__ = _SUBCLASS_FIT_HOOK
        _fit_per_subclass.add(base)


def _wrap_subclass(cls: type) -> None:
    """Wrap the ``fit`` ``cls`` defines, or give it one that calls the ``fit`` it inherits."""
    if "fit" not in cls.__dict__:
        cls.fit = _wrapper(_inherited_fit(cls))
        _fits_added.add(cls)
    else:
        _owners_outside.add(cls)
        _wrap_own(cls)


def _wrap_fit_of_new_subclass(cls: type, **kwargs: Any) -> None:
    """``__init_subclass__`` of a base given to ``wrap_fit_of_subclasses``: a new subclass's fit wrapped too."""
    base = next(klass for klass in cls.__mro__[1:] if klass in _fit_per_subclass)
    super(base, cls).__init_subclass__(**kwargs)
    if _handler is not None:
        _wrap_subclass(cls)


_SUBCLASS_FIT_HOOK = classmethod(_wrap_fit_of_new_subclass)


def _inherited_fit(cls: type) -> Callable:
    """A ``fit`` for ``cls`` that calls the ``fit`` it inherits, as found when called."""

    def fit(self: Any, *args: Any, **kwargs: Any) -> Any:
        return super(cls, self).fit(*args, **kwargs)

    fit.__qualname__ = f"{cls.__qualname__}.fit"
    return fit


def wrap_function_of(module: ModuleType, name: str, make_wrapper: Callable[[Callable], Callable]) -> None:
    """Replace function ``name`` of ``module`` (``xgboost.train``) by ``make_wrapper(function)``, which calls ``route``.

    The function MLflow keeps aside to restore is wrapped too, and a function already holding one of
    these wrappers down its ``__wrapped__`` chain is not wrapped again. Nothing happens while
    uninstalled; ``uninstall`` puts the functions back.
    """
    if _handler is None:
        return
    _functions_wrapped.add((module, name))
    for attribute in (name, _KEPT_PREFIX + name):
        current = module.__dict__.get(attribute)
        if inspect.isfunction(current) and not _already_wrapped(current):
            if current not in _wrapper_of:
                wrapper = make_wrapper(current)
                _wrapper_of[current], _wrapped_by[wrapper] = wrapper, current
            setattr(module, attribute, _wrapper_of[current])


def route(original: Callable, estimator: Any, args: tuple, kwargs: dict, caller: FrameType | None) -> Any:
    """One wrapped call, as ``estimator.fit(*args, **kwargs)`` made from frame ``caller``: to the handler, which
    calls ``original(estimator, *args, **kwargs)``, or straight to ``original`` when uninstalled."""
    handler = _handler
    if handler is None:
        return original(estimator, *args, **kwargs)
    return handler(original, estimator, args, kwargs, caller)


def uninstall() -> None:
    """Put back every ``fit`` wrapped here (wherever it still is) and stop routing the ones MLflow holds."""
    global _handler
    _handler = None
    classes = list(_owners_outside)
    base = sys.modules.get("sklearn.base")
    if base is not None:
        _remove_subclass_hook(base.BaseEstimator)
        classes.extend(_subclasses(base.BaseEstimator))
    for cls in classes:
        _unwrap(cls, ("fit", _KEPT_BY_MLFLOW))
    for module, name in _functions_wrapped:
        _unwrap(module, (name, _KEPT_PREFIX + name))
    for cls in _fits_added:
        if cls.__dict__.get("fit") in _wrapped_by:
            del cls.fit
    for base in _fit_per_subclass:
        if base.__dict__.get("__init_subclass__") is _SUBCLASS_FIT_HOOK:
            del base.__init_subclass__
    _owners_outside.clear()
    _functions_wrapped.clear()
    _fits_added.clear()
    _fit_per_subclass.clear()


def _unwrap(owner: type | ModuleType, names: tuple[str, ...]) -> None:
    """Put back what this module's wrappers held as ``owner``'s attributes ``names`` wrap."""
    for name in names:
        current = owner.__dict__.get(name)
        if inspect.isfunction(current) and current in _wrapped_by:
            setattr(owner, name, _wrapped_by[current])


def _on_sklearn_base_imported(module: Any) -> None:
    if _handler is not None:
        _wrap_estimators(module.BaseEstimator)


def _wrap_estimators(base: type) -> None:
    _install_subclass_hook(base)
    for cls in _subclasses(base):
        _wrap_class(cls, base)


def _wrap_class(cls: type, base: type) -> None:
    """Wrap the ``fit`` ``cls`` defines, and the one it inherits from a class outside ``base``'s tree."""
    _wrap_own(cls)
    owner = next((klass for klass in cls.__mro__ if "fit" in klass.__dict__), None)
    if owner is not None and not issubclass(owner, base):
        _owners_outside.add(owner)
        _wrap_own(owner)


def _wrap_own(cls: type) -> None:
    for name in ("fit", _KEPT_BY_MLFLOW):
        current = cls.__dict__.get(name)
        if inspect.isfunction(current) and not _already_wrapped(current):
            setattr(cls, name, _wrapper(current))


def _already_wrapped(function: Callable) -> bool:
    """True when ``function`` is a wrapper of this module or wraps one (MLflow's patch over ours)."""
    for _ in range(_MAX_CHAIN):
        if function in _wrapped_by:
            return True
        function = getattr(function, "__wrapped__", None)
        if function is None:
            return False
    return False


def _wrapper(original: Callable) -> Callable:
    """The one wrapper of ``original`` (made once, so wrapping again gives the same object)."""
    if original not in _wrapper_of:

        @functools.wraps(original)
        def fit(self: Any, *args: Any, **kwargs: Any) -> Any:
            return _route(original, self, args, kwargs)

        _wrapper_of[original], _wrapped_by[fit] = fit, original
    return _wrapper_of[original]


def _route(original: Callable, estimator: Any, args: tuple, kwargs: dict) -> Any:
    """One wrapped fit: straight through when uninstalled, else to the handler with the frame that called fit."""
    return route(original, estimator, args, kwargs, sys._getframe(2))


def _subclasses(base: type) -> Iterator[type]:
    """Every class deriving from ``base`` defined so far (each once)."""
    seen, pending = set(), [base]
    while pending:
        for cls in type.__subclasses__(pending.pop()):
            if cls not in seen:
                seen.add(cls)
                pending.append(cls)
                yield cls


def _wrap_new_subclass(cls: type, **kwargs: Any) -> None:
    """``BaseEstimator.__init_subclass__`` while installed: the usual hook, then the new class's fit wrapped."""
    base = sys.modules["sklearn.base"].BaseEstimator
    if _previous_hook is not None:
        _previous_hook.__get__(None, cls)(**kwargs)
    else:
        super(base, cls).__init_subclass__(**kwargs)
    if _handler is not None:
        _wrap_class(cls, base)


_SUBCLASS_HOOK = classmethod(_wrap_new_subclass)


def _install_subclass_hook(base: type) -> None:
    global _previous_hook
    current = base.__dict__.get("__init_subclass__")
    if current is not _SUBCLASS_HOOK:
        _previous_hook = current
        base.__init_subclass__ = _SUBCLASS_HOOK


def _remove_subclass_hook(base: type) -> None:
    if base.__dict__.get("__init_subclass__") is _SUBCLASS_HOOK:
        if _previous_hook is None:
            del base.__init_subclass__
        else:
            base.__init_subclass__ = _previous_hook

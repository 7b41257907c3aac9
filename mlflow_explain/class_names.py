"""Names for the classes of a classifier whose labels are codes (``class_names=`` of explain, autolog, the CLI)."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

from .errors import InvalidInputError
from .results import Task

ClassNames = Sequence[Any] | Mapping[Any, Any] | None


def with_class_names(task: Task, class_names: ClassNames) -> Task:
    """``task`` with its classes named: a name per class in the model's class order, or a label -> name mapping.

    Raises
    ------
    InvalidInputError
        When the model is no classifier, a class has no name, or two classes share one.
    """
    if class_names is None:
        return task
    if not task.is_classification:
        raise InvalidInputError("class_names were given, but the model is a regressor (it predicts no classes).")
    classes = list(task.classes)
    if isinstance(class_names, Mapping):
        named = {str(label): str(name) for label, name in class_names.items()}
        missing = [label for label in classes if str(label) not in named]
        if missing:
            raise InvalidInputError(f"class_names name no class {', '.join(map(repr, missing))}; classes: {classes}.")
        names = [named[str(label)] for label in classes]
    else:
        names = [str(name) for name in class_names]
        if len(names) != len(classes):
            raise InvalidInputError(
                f"class_names has {len(names)} name(s) but the model has {len(classes)} classes ({classes}), "
                "one name per class in that order."
            )
    if len(set(names)) != len(names):
        raise InvalidInputError(f"class_names must be distinct, got {names}.")
    return dataclasses.replace(task, class_names=tuple(names))

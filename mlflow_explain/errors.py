"""Exceptions raised by mlflow_explain: one sentence naming the problem."""


class ExplainError(Exception):
    """Base class of every error mlflow_explain raises on purpose."""


class InvalidInputError(ExplainError, ValueError):
    """The model, the validation data or the target cannot be explained as given."""


class ConfigError(ExplainError, ValueError):
    """The configuration has an unknown key or a value of the wrong type or range."""


class MissingDependencyError(ExplainError, ImportError):
    """An optional dependency that the requested explanation needs is not installed."""

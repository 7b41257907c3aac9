"""The configuration reference, generated from the pydantic models of ``mlflow_explain/config.py``.

``config_reference()`` returns the Markdown of the page ``reference/configuration.md``: every section,
and in it every key with its type, default and description, read from the models themselves so the
page cannot drift from the code. ``docs/hooks.py`` adds it to the site at build time;
``python docs/gen_config_reference.py`` prints it.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import annotated_types

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

# The private helpers are the ones the config's own error messages and defaults file use, so the
# reference names types and defaults in the same words.
from mlflow_explain.config import ExplainConfig, _describe, _is_section, _range, _scalar  # noqa: E402

BOUNDS = (annotated_types.Gt, annotated_types.Ge, annotated_types.Lt, annotated_types.Le)
INTRO = """\
# Configuration reference

Every key, its type, its default and what it does. This page is generated from the pydantic models
in `mlflow_explain/config.py` each time the docs are built, so it always matches the code.

Give options in any of three ways; each is merged over the defaults, and an unknown key is an error that
names it:

- a YAML file: `explain(..., config="my.yaml")`, `mlflow-explain explain --config my.yaml`;
- a nested dict in code: `config={"permutation": {"n_repeats": 10}}`;
- `--set section.key=value` on the command line: `--set permutation.n_repeats=10`.

The same defaults, as a commented YAML file, are in `configs/default.yaml` (and shipped in the package as
`mlflow_explain/default_config.yaml`). `mlflow-explain config --config my.yaml --set ...` prints the
effective config.
"""


def type_in_words(field: Any) -> str:
    """A field's accepted values in words: its ``expects`` note, else its type and bounds."""
    expects = (field.json_schema_extra or {}).get("expects")
    if expects:
        return expects
    bounds = [item for item in field.metadata if isinstance(item, BOUNDS)]
    words = _describe(field.annotation)
    return f"{words}, {_range(bounds)}" if bounds else words


def _cell(text: str) -> str:
    """Text safe inside a Markdown table cell."""
    return text.replace("|", "\\|").replace("\n", " ")


TABLE_HEAD = ["| key | type | default | description |", "|---|---|---|---|"]


def key_row(key: str, field: Any) -> str:
    """One table row: the key, what it accepts, its default, and its description."""
    default = _cell(_scalar(field.default))
    return f"| `{key}` | {_cell(type_in_words(field))} | `{default}` | {_cell(field.description)} |"


def config_reference() -> str:
    """The Markdown of the configuration reference page."""
    lines = [INTRO]
    top_level = []
    for name, field in ExplainConfig.model_fields.items():
        if _is_section(field.annotation):
            lines += [f"## `{name}`", "", f"{field.description[0].upper()}{field.description[1:]}.", "", *TABLE_HEAD]
            lines += [key_row(f"{name}.{key}", option) for key, option in field.annotation.model_fields.items()]
            lines.append("")
        else:
            top_level.append(key_row(name, field))
    if top_level:
        lines += ["## Top-level keys", "", *TABLE_HEAD, *top_level]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.stdout.write(config_reference())

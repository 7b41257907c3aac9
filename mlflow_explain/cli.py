"""The ``mlflow-explain`` command line (click, like mlflow's own CLI)."""

from __future__ import annotations

import click
import yaml

from .config import load_config
from .errors import ExplainError


@click.group(help="Explain models tracked in MLflow: permutation importance, SHAP, reports.")
def main() -> None:
    """Entry point of the ``mlflow-explain`` console script."""


@main.command("config", help="Print the effective configuration (defaults, then --config, then --set).")
@click.option("--config", "config_path", type=click.Path(dir_okay=False), help="YAML file merged over the defaults.")
@click.option("--set", "overrides", multiple=True, metavar="SECTION.KEY=VALUE", help="Override one key; repeatable.")
def show_config(config_path: str | None, overrides: tuple[str, ...]) -> None:
    try:
        config = load_config(config_path, overrides=list(overrides))
    except ExplainError as err:
        raise click.UsageError(str(err)) from err
    click.echo(yaml.safe_dump(config.to_dict(), sort_keys=False), nl=False)

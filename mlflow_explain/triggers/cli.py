"""The ``mlflow-explain`` command line (click, like mlflow's own CLI).

Exit codes: 0 on success, 2 on bad input (one line on stderr naming the problem; a tracking store
that does not exist is bad input, not a new empty store). ``explain`` prints a short summary on
stdout (status, top features, where the report is); each method that failed is one WARNING line on
stderr as it fails (its traceback at DEBUG, with ``--debug``, and in ``error.txt``). It
exits with 1 when the explanation failed (status ``failed``: no method gave a result; one more line
says so) and with 0 when it is ``partial`` (the other methods' results are logged). ``sync`` exits
with 1 when some spooled explanation could not be uploaded (it stays spooled). MLflow's artifact
download bars are off while the plugin downloads (one bar per file would fill stderr). MLflow and
the engine are imported inside the commands that use them, so ``--help`` and ``config`` start at once.
"""

from __future__ import annotations

import logging
import sys

import click
import yaml

from ..config import load_config
from ..errors import ExplainError, InvalidInputError, listed

_CONFIG_OPTIONS = [
    click.option(
        "--config",
        "config_path",
        type=click.Path(dir_okay=False),
        help="YAML file merged over the defaults (configs/default.yaml).",
    ),
    click.option(
        "--set",
        "overrides",
        multiple=True,
        metavar="SECTION.KEY=VALUE",
        help="Override one config key, e.g. --set shap.max_rows=500; repeatable.",
    ),
]


def _config_options(command):
    for option in reversed(_CONFIG_OPTIONS):
        command = option(command)
    return command


_TRACKING_URI_OPTION = click.option(
    "--tracking-uri",
    help="MLflow tracking store, e.g. sqlite:///mlflow.db or http://host:5000 (default: MLFLOW_TRACKING_URI, else "
    "MLflow's default, sqlite:///mlflow.db in the working folder).",
)


@click.group(help="Explain models tracked in MLflow: permutation importance, SHAP, reports.")
@click.option("-v", "--verbose", is_flag=True, help="Log progress messages (INFO) to stderr.")
@click.option(
    "--debug", is_flag=True, help="Log the plugin's INFO and DEBUG messages too (a failed method's traceback)."
)
def main(verbose: bool, debug: bool) -> None:
    """Entry point of the ``mlflow-explain`` console script."""
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s"
    )
    if debug:
        logging.getLogger("mlflow_explain").setLevel(logging.DEBUG)


@main.command("config", help="Print the effective configuration (defaults, then --config, then --set).")
@_config_options
def show_config(config_path: str | None, overrides: tuple[str, ...]) -> None:
    config = _load(config_path, overrides)
    click.echo(yaml.safe_dump(config.to_dict(), sort_keys=False), nl=False)


@main.command("explain", help="Explain a logged model on validation data and log the results into its run.")
@click.option("--model-uri", required=True, help="Logged model, e.g. runs:/<run id>/model or models:/<name>/<version>.")
@click.option(
    "--data",
    "data_path",
    type=click.Path(dir_okay=False),
    help="Validation rows: a CSV or Parquet file (default: validation.path in the config).",
)
@click.option("--target", help="Target column in --data (default: validation.target in the config).")
@click.option(
    "--images",
    "images_path",
    type=click.Path(dir_okay=False),
    help="Image attributions (gradcam.methods) instead of tabular methods: a .npz with 'images' (n, C, H, W) and "
    "optional 'labels' and 'class_names', for a model logged with mlflow.pytorch.",
)
@click.option("--run-id", help="Run to log into (default: the run that logged the model).")
@click.option(
    "--class-names",
    help="Names of a classifier's classes when its labels are codes, comma-separated in the model's class order "
    "(e.g. setosa,versicolor,virginica for 0,1,2).",
)
@click.option(
    "--spark",
    "use_spark",
    is_flag=True,
    help="Explain every row on Apache Spark (session on spark.master); --data is then a Parquet path or URI.",
)
@click.option("--shap-output", help="With --spark: Parquet path receiving the SHAP values of every row.")
@_TRACKING_URI_OPTION
@_config_options
def explain_command(
    model_uri: str,
    data_path: str | None,
    target: str | None,
    images_path: str | None,
    run_id: str | None,
    class_names: str | None,
    use_spark: bool,
    shap_output: str | None,
    tracking_uri: str | None,
    config_path: str | None,
    overrides: tuple[str, ...],
) -> None:
    from mlflow.exceptions import MlflowException
    from tqdm.auto import tqdm

    from ..models import is_spark_ml_model
    from ..publish import tracking
    from .cli_summary import summary_lines
    from .explain import explain_logged
    from .explain_images import explain_images, read_images_file

    config = _load(config_path, overrides)
    _use_store(tracking_uri)
    if images_path is not None and (data_path is not None or target is not None or use_spark):
        _fail(
            "Pass either --images (image attributions of a PyTorch model) or --data/--target (tabular data), not both."
        )
    if class_names is not None and (images_path is not None or use_spark):
        _fail("--class-names names the classes of tabular data explained in process; not with --images or --spark.")
    steps = tqdm(total=2, desc="mlflow-explain", unit="step", disable=None, file=sys.stderr)
    try:
        if run_id is not None:
            tracking.check_run(run_id)
        steps.set_postfix_str("loading model")
        if use_spark:  # before loading: a model logged with mlflow.spark is loaded into this session
            _spark_session(config)
        if images_path is not None:
            (model, model_run_id), input_names = tracking.load_pytorch_model(model_uri), None
        else:
            model, model_run_id, input_names = tracking.load_logged_model(model_uri)
        steps.update()
        target_run = run_id or model_run_id
        if target_run is None:
            raise InvalidInputError(f"Model {model_uri} is not attached to a run; pass --run-id.")
        steps.set_postfix_str("explaining")
        if shap_output and not use_spark:
            raise InvalidInputError("--shap-output needs --spark.")
        if not use_spark and is_spark_ml_model(model):
            raise InvalidInputError(
                f"Model {model_uri} is a Spark ML model ({type(model).__name__}); explain it on Spark with --spark "
                "(--data then a Parquet path or URI)."
            )
        if images_path is not None:
            explanation = explain_images(model, **read_images_file(images_path), config=config, run_id=target_run)
        elif use_spark:
            explanation = _explain_on_spark(model, data_path, target, config, target_run, shap_output)
        else:
            explanation = explain_logged(
                model,
                data_path,
                target=target,
                config=config,
                run_id=target_run,
                input_names=input_names,
                class_names=None if class_names is None else [name.strip() for name in class_names.split(",")],
            )[0]
        steps.update()
    except (ExplainError, OSError) as err:
        _fail(str(err))
    except MlflowException as err:  # a wrong model URI, an unknown run, an unreachable server
        _fail_mlflow(err)
    finally:
        steps.close()
    click.echo("\n".join(summary_lines(explanation, target_run, config.logging.artifact_dir)))
    if config.logging.report and "logging" not in explanation.errors:
        click.echo(tracking.report_hint(target_run, config.logging.artifact_dir))
    if explanation.status == "failed":  # each failure was logged at WARNING as it happened
        click.echo(f"Error: the explanation of run {target_run} failed: no method gave a result.", err=True)
        sys.exit(1)


@main.command("compare", help="Compare the explanations of runs across experiments and log a comparison run.")
@click.option("--experiment", "experiments", multiple=True, help="Experiment name whose runs are compared; repeatable.")
@click.option("--experiment-id", "experiment_ids", multiple=True, help="Experiment id; repeatable.")
@click.option("--run-id", "run_ids", multiple=True, help="Compare exactly these runs; repeatable.")
@click.option("--filter", "filter_string", help="MLflow search filter, e.g. \"params.model = 'rf'\".")
@click.option("--max-runs", default=50, show_default=True, help="Newest runs taken per search.")
@click.option("--order-by", help="Metric ordering the runs in the plots (default: start time).")
@click.option("--log-to", help="Experiment that receives the comparison run (default: the first run's).")
@_TRACKING_URI_OPTION
@_config_options
def compare_command(
    experiments: tuple[str, ...],
    experiment_ids: tuple[str, ...],
    run_ids: tuple[str, ...],
    filter_string: str | None,
    max_runs: int,
    order_by: str | None,
    log_to: str | None,
    tracking_uri: str | None,
    config_path: str | None,
    overrides: tuple[str, ...],
) -> None:
    from mlflow.exceptions import MlflowException

    from .compare import compare

    config = _load(config_path, overrides)
    _use_store(tracking_uri)
    try:
        comparison = compare(
            list(experiments) or None,
            list(experiment_ids) or None,
            list(run_ids) or None,
            filter_string,
            max_runs,
            log_to,
            order_by,
            config,
        )
    except ExplainError as err:
        _fail(str(err))
    except MlflowException as err:
        _fail_mlflow(err)
    click.echo(f"Compared {len(comparison.runs)} run(s) into comparison run {comparison.run_id}.")
    for note in comparison.notes:
        click.echo(f"Note: {note}", err=True)


@main.command(
    "log-explainer",
    help="Log a logged model as an explainer model that `mlflow models serve` answers with SHAP values per row.",
)
@click.option("--model-uri", required=True, help="Logged model, e.g. runs:/<run id>/model or models:/<name>/<version>.")
@click.option(
    "--background",
    "background_path",
    type=click.Path(dir_okay=False),
    help="Rows like the model's input (CSV or Parquet): its columns and types, and the background sample the "
    "linear and sampled explainers need (a tree ensemble that is no Pipeline needs none).",
)
@click.option("--name", default="explainer", show_default=True, help="Name of the logged explainer model.")
@click.option("--run-id", help="Run to log into (default: the run that logged the model).")
@_TRACKING_URI_OPTION
@_config_options
def log_explainer_command(
    model_uri: str,
    background_path: str | None,
    name: str,
    run_id: str | None,
    tracking_uri: str | None,
    config_path: str | None,
    overrides: tuple[str, ...],
) -> None:
    from mlflow.exceptions import MlflowException

    from ..data import read_table
    from ..publish import tracking
    from ..serving.log_explainer import log_explainer

    config = _load(config_path, overrides)
    _use_store(tracking_uri)
    try:
        if run_id is not None:
            tracking.check_run(run_id)
        model, model_run_id, input_names = tracking.load_logged_model(model_uri)
        background = None if background_path is None else read_table(background_path)
        if background is not None and input_names is not None:
            missing = [column for column in input_names if column not in background.columns]
            if missing:
                raise InvalidInputError(
                    f"The background file {background_path} misses the model's columns: {listed(missing)}."
                )
            background = background[input_names]
        target_run = run_id or model_run_id
        if target_run is None:
            raise InvalidInputError(f"Model {model_uri} is not attached to a run; pass --run-id.")
        info = log_explainer(model, background=background, name=name, config=config, run_id=target_run)
    except (ExplainError, OSError) as err:
        _fail(str(err))
    except MlflowException as err:
        _fail_mlflow(err)
    click.echo(f"Logged the explainer {info.model_uri} into run {target_run}.")
    click.echo(f"Serve it: mlflow models serve -m {info.model_uri} --env-manager local")


def _spark_session(config):
    """The Spark session of ``spark.master`` (or the active one)."""
    try:
        from ..spark import spark_session
    except ImportError as err:
        raise InvalidInputError(
            f"--spark needs pyspark ({err}); install it with pip install 'mlflow-explain[spark]'."
        ) from err
    return spark_session(config.spark)


def _explain_on_spark(model, data_path: str | None, target: str | None, config, run_id: str, shap_output: str | None):
    from pyspark.errors import AnalysisException

    from ..spark import explain

    data_path = data_path or config.validation.path
    target = target or config.validation.target
    if data_path is None or target is None:
        raise InvalidInputError(
            "--spark needs --data (a Parquet path) and --target, or validation.path and validation.target."
        )
    try:
        frame = _spark_session(config).read.parquet(data_path)
    except AnalysisException as err:
        raise InvalidInputError(f"Cannot read the Parquet data {data_path}: {str(err).splitlines()[0]}") from err
    return explain(model, frame, target, config=config, run_id=run_id, shap_output=shap_output)


@main.command("sync", help="Upload the explanations spooled while MLflow was unreachable (logging.spool_dir).")
@click.option("--spool-dir", help="Spool folder (default: logging.spool_dir in the config).")
@click.option("--tracking-uri", help="Server to upload to (default: the one each explanation was meant for).")
@_config_options
def sync_command(
    spool_dir: str | None, tracking_uri: str | None, config_path: str | None, overrides: tuple[str, ...]
) -> None:
    from ..publish.spool import sync

    folder = spool_dir or _load(config_path, overrides).logging.spool_dir
    if not folder:
        _fail("Name the spool folder: --spool-dir, or logging.spool_dir in the config.")
    result = sync(folder, tracking_uri)
    for name, run_id in result.uploaded.items():
        click.echo(f"Uploaded {name} to run {run_id}.")
    for name, error in result.failed.items():
        click.echo(f"Error: {name} stays spooled: {' '.join(error.split())}", err=True)
    click.echo(f"Synced {len(result.uploaded)} explanation(s); {len(result.failed)} left in {folder}.")
    if result.failed:
        sys.exit(1)


def _load(config_path: str | None, overrides: tuple[str, ...]):
    try:
        return load_config(config_path, overrides=list(overrides))
    except ExplainError as err:
        _fail(str(err))


def _use_store(tracking_uri: str | None) -> None:
    """Point MLflow at ``tracking_uri`` (when given), and stop when that store is a local file that does not exist.

    MLflow would create it, empty, and every run would then be "not found": a command run from the
    wrong folder says which store it looked for instead.
    """
    import mlflow

    from ..publish.tracking import missing_store

    if tracking_uri:
        mlflow.set_tracking_uri(tracking_uri)
    uri = mlflow.get_tracking_uri()
    path = missing_store(uri)
    if path is not None:
        _fail(
            f"There is no MLflow tracking store at {uri} ({path} does not exist); point at yours with --tracking-uri "
            "or MLFLOW_TRACKING_URI, or run from the folder that holds it."
        )


def _fail_mlflow(err) -> None:
    """Fail with MLflow's message; when something was not found, with the tracking store that was searched."""
    import mlflow
    from mlflow.protos.databricks_pb2 import RESOURCE_DOES_NOT_EXIST, ErrorCode

    message = f"MLflow: {err.message}"
    if err.error_code == ErrorCode.Name(RESOURCE_DOES_NOT_EXIST):
        message = (
            f"{message.rstrip('.')}; searched the tracking store {mlflow.get_tracking_uri()} (another store: "
            "--tracking-uri or MLFLOW_TRACKING_URI)."
        )
    _fail(message)


def _fail(message: str) -> None:
    click.echo(f"Error: {' '.join(message.split())}", err=True)
    sys.exit(2)

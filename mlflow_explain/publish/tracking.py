"""The one module that talks to MLflow: run resolution, metrics, tags and artifact upload."""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import os
import tempfile
import time
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd
import requests
from mlflow.entities import Metric, Run, RunTag
from mlflow.environment_variables import MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from ..errors import InvalidInputError, MissingDependencyError
from ..keys import key_parts
from ..output.ranking import table_paths
from ..results import BaselineCandidate, Explanation, RunImportances, tabular_result_types

logger = logging.getLogger(__name__)

STATUS_TAG = "mlflow_explain.status"
KIND_TAG = "mlflow_explain.kind"
DRIFT_TAG = "mlflow_explain.drift"
ERROR_FILE = "error.txt"
VERSION_TAG = "mlflow_explain.version"
FAMILY_TAG = "mlflow_explain.model_family"  # what drift compares within (compare.baseline_match: family)...
FEATURE_SET_TAG = "mlflow_explain.feature_set"  # ...on the same features: a digest of their names
COUNT_TAG = "mlflow_explain.explanations"  # how many explanations the run has had
PARENT_TAG = "mlflow.parentRunId"  # MLflow's tag of a nested run: its parent's id
LOGGED_TABLES_TAG = "mlflow.loggedArtifacts"  # MLflow's list of a run's tables (mlflow.log_table), read by its UI
HISTORY = "history"  # the folder under the artifact folder holding the earlier explanations
_BATCH = 1000  # MLflow's limit of entities per log_batch call


@contextlib.contextmanager
def _without_progress_bars() -> Iterator[None]:
    """MLflow's "Downloading artifacts" progress bars off while the plugin downloads (also as a decorator).

    Those bars are MLflow's bookkeeping of the plugin's own reads (a model, an earlier explanation,
    a run's importances), not progress the user asked for: one per download, they would fill stderr.
    """
    name = MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR.name
    previous = os.environ.get(name)
    os.environ[name] = "false"
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = previous


def missing_store(tracking_uri: str) -> str | None:
    """The local file a tracking URI names when it does not exist yet (MLflow would create it, empty); else None.

    A SQLite URI (``sqlite:///mlflow.db``, relative to the working folder) or a file store (a path
    or ``file:`` URI); servers and other databases are never missing.
    """
    if tracking_uri.startswith("sqlite:///"):
        path = tracking_uri[len("sqlite:///") :].split("?")[0]
    elif tracking_uri.startswith("file:"):
        path = urllib.parse.urlparse(tracking_uri).path
    elif "://" not in tracking_uri:
        path = tracking_uri
    else:
        return None
    if path in ("", ":memory:"):
        return None
    resolved = Path(path).resolve()
    return None if resolved.exists() else str(resolved)


@contextlib.contextmanager
def target_run(run_id: str | None = None) -> Iterator[str]:
    """The run to log into: ``run_id``, else the active run, else a new run ended afterwards."""
    if run_id is not None:
        yield run_id
        return
    active = mlflow.active_run()
    if active is not None:
        yield active.info.run_id
        return
    with mlflow.start_run(run_name="mlflow_explain") as run:
        logger.info("No active MLflow run: logging the explanation to new run %s.", run.info.run_id)
        yield run.info.run_id


def log_explanation(explanation: Explanation, directory: Path, run_id: str, artifact_dir: str) -> None:
    """Log metrics, tags and every file under ``directory`` into run ``run_id`` (see :func:`upload`)."""
    upload(run_id, explanation_metrics(explanation), explanation_tags(explanation), directory, artifact_dir)


@_without_progress_bars()
def archive_earlier_explanation(client: MlflowClient, run: Run, artifact_dir: str) -> int:
    """Move the files of ``run``'s earlier explanation under ``<artifact_dir>/history/<n>/``; return n.

    n counts the run's earlier explanations (its ``mlflow_explain.explanations`` tag; 1 for a run
    explained before the tag existed), 0 when there is none (and nothing is moved). What is moved,
    and where, is said in the log.
    """
    run_id, tags = run.info.run_id, run.data.tags
    earlier = int(tags.get(COUNT_TAG, 1 if STATUS_TAG in tags else 0))
    if earlier == 0:
        return 0
    items = [item for item in client.list_artifacts(run_id, artifact_dir) if item.path != f"{artifact_dir}/{HISTORY}"]
    if not items:
        return earlier
    destination = f"{artifact_dir}/{HISTORY}/{earlier}"
    with tempfile.TemporaryDirectory(prefix="mlflow_explain_history_") as folder:
        for item in items:
            client.download_artifacts(run_id, item.path, folder)
        client.log_artifacts(run_id, folder, artifact_path=destination)  # each item was downloaded under its name
    from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository

    repository = get_artifact_repository(run.info.artifact_uri)
    for item in items:
        repository.delete_artifacts(item.path)
    logger.info(
        "mlflow_explain: run %s was explained before; its explanation number %d moved to %s/ (%d item(s)), "
        "so %s/ holds only the new one.",
        run_id,
        earlier,
        destination,
        len(items),
        artifact_dir,
    )
    return earlier


def explanation_tags(explanation: Explanation) -> dict[str, str]:
    """The run tags of an explanation: status, plugin version, model family, feature set and, after a comparison,
    the drift verdict."""
    tags = {STATUS_TAG: explanation.status, VERSION_TAG: explanation.versions.get("mlflow_explain", "unknown")}
    tags.update(baseline_match_tags(explanation))
    if explanation.drift is not None:
        tags[DRIFT_TAG] = "alert" if explanation.drift.alert else "ok"
    return tags


def upload(
    run_id: str | None,
    metrics: dict[str, float],
    tags: dict[str, str],
    directory: Path,
    artifact_dir: str,
    tracking_uri: str | None = None,
    experiment_id: str | None = None,
) -> str:
    """Log every file under ``directory``, then the metrics and tags, into a run; return its id.

    With ``run_id`` None a new run named ``mlflow_explain`` is created in ``experiment_id`` (default
    the default experiment). The files go first and the metrics and tags follow in one ``log_batch``
    call (per 1000 metrics), so a run tagged with a status holds everything.

    A run explained before keeps one explanation in ``artifact_dir``: the earlier one's files are
    first moved to ``<artifact_dir>/history/<n>/`` (:func:`archive_earlier_explanation`), and the
    metrics are logged at step n, the number of earlier explanations, so no step holds two values;
    the tag ``mlflow_explain.explanations`` counts them.

    The ranking tables (``output/ranking``) are registered in MLflow's ``mlflow.loggedArtifacts`` tag,
    as ``mlflow.log_table`` registers a table, so that the UI shows them (:func:`logged_tables_tag`).
    """
    client = MlflowClient(tracking_uri)
    earlier = 0
    if run_id is None:
        run = client.create_run(experiment_id or "0", run_name="mlflow_explain")
        run_id = run.info.run_id
        client.set_terminated(run_id)
    else:
        run = client.get_run(run_id)
        earlier = archive_earlier_explanation(client, run, artifact_dir)
    client.log_artifacts(run_id, str(directory), artifact_path=artifact_dir)
    tables = [f"{artifact_dir}/{path}" for path in table_paths(directory)]
    if tables:  # the tag as read before this upload: nothing below writes it
        tags = tags | {LOGGED_TABLES_TAG: logged_tables_tag(run.data.tags.get(LOGGED_TABLES_TAG), tables)}
    log_metrics(client, run_id, metrics, tags | {COUNT_TAG: str(earlier + 1)}, step=earlier)
    return run_id


def logged_tables_tag(current: str | None, tables: list[str]) -> str:
    """The value of MLflow's ``mlflow.loggedArtifacts`` tag with ``tables`` registered, as ``mlflow.log_table`` does.

    ``current`` is the tag's value before (None when the run has none); every entry it holds is kept, so
    tables the user logged stay listed. A value that is not MLflow's JSON list is replaced, and said.
    """
    try:
        entries = json.loads(current) if current else []
    except ValueError:
        entries = None
    if not isinstance(entries, list):
        logger.warning(
            "The run's %s tag (%.80r) is not a JSON list; it now lists the explanation's tables only.",
            LOGGED_TABLES_TAG,
            current,
        )
        entries = []
    entries += [entry for path in tables if (entry := {"path": path, "type": "table"}) not in entries]
    return json.dumps(entries)


def unreachable(err: Exception) -> bool:
    """True when ``err`` means MLflow could not take the data (server down, timeout, server error).

    A refusal of the request itself (an unknown run, an invalid value: HTTP 4xx) is not that.
    """
    if isinstance(err, MlflowException):
        return err.get_http_status_code() >= 500
    return isinstance(err, (requests.exceptions.RequestException, ConnectionError, TimeoutError))


def pending_target() -> tuple[str | None, str | None, str]:
    """Where an explanation was going, known without asking the server: run id, experiment id, tracking URI."""
    active = mlflow.active_run()
    if active is not None:
        return active.info.run_id, active.info.experiment_id, mlflow.get_tracking_uri()
    return None, mlflow.tracking.fluent._active_experiment_id, mlflow.get_tracking_uri()


def log_failure(run_id: str, message: str, artifact_dir: str) -> None:
    """Mark a run whose explanation failed: status tag ``failed`` and the message in error.txt."""
    client = MlflowClient()
    client.log_text(run_id, message + "\n", f"{artifact_dir}/{ERROR_FILE}")
    client.set_tag(run_id, STATUS_TAG, "failed")


@_without_progress_bars()
def load_logged_model(model_uri: str) -> tuple[Any, str | None, list[str] | None]:
    """Load a logged model, unwrapped to the raw estimator where the flavor allows; its run id and input names.

    scikit-learn, XGBoost and LightGBM models come back as themselves (so tree models take the
    fast SHAP path); any other pyfunc model is wrapped so that ``predict`` works. The input names
    are those of its signature (see ``signature_input_names``).
    """
    pyfunc_model = mlflow.pyfunc.load_model(model_uri)
    return unwrap_pyfunc(pyfunc_model), pyfunc_model.metadata.run_id, signature_input_names(pyfunc_model)


def signature_input_names(pyfunc_model: Any) -> list[str] | None:
    """The column names a pyfunc model's signature gives its inputs, in order; None when it names none.

    A model fitted on an array records no column names itself; its signature (``infer_signature`` of
    the training frame) is then what tells which column of a data file goes where.
    """
    metadata = getattr(pyfunc_model, "metadata", None)
    schema = metadata.get_input_schema() if metadata is not None else None
    if schema is None or schema.is_tensor_spec() or not schema.has_input_names():
        return None
    return [str(name) for name in schema.input_names()]


@_without_progress_bars()
def load_pytorch_model(model_uri: str) -> tuple[Any, str | None]:
    """A model logged with ``mlflow.pytorch``, as its ``torch.nn.Module``, and its run id."""
    info = mlflow.models.get_model_info(model_uri)
    if "pytorch" not in info.flavors:
        raise InvalidInputError(
            f"Model {model_uri} was not logged with mlflow.pytorch (its flavors: "
            f"{', '.join(sorted(info.flavors))}); Grad-CAM explains PyTorch models."
        )
    try:
        from mlflow import pytorch as pytorch_flavor
    except ImportError as err:
        raise MissingDependencyError(
            "Loading a PyTorch model needs PyTorch: pip install 'mlflow-explain[torch]'."
        ) from err
    return pytorch_flavor.load_model(model_uri), info.run_id


def unwrap_pyfunc(pyfunc_model: Any) -> Any:
    """The raw estimator inside a pyfunc model, or the pyfunc model seen as a predictor."""
    try:
        return pyfunc_model.get_raw_model()
    except (NotImplementedError, AttributeError):
        logger.info("The model has no raw model to unwrap; explaining its pyfunc predict().")
        return PyfuncPredictor(pyfunc_model)


class PyfuncPredictor:
    """A pyfunc model seen as a fitted estimator with ``predict`` (no probabilities)."""

    def __init__(self, pyfunc_model: Any):
        self.pyfunc_model = pyfunc_model

    def predict(self, X: Any) -> np.ndarray:
        predictions = self.pyfunc_model.predict(X)
        return (
            np.asarray(predictions).reshape(len(X), -1)[:, 0] if np.ndim(predictions) > 1 else np.asarray(predictions)
        )


LOCAL_UI = "http://127.0.0.1:5000"  # where `mlflow ui` serves by default


def report_address(run_id: str, artifact_dir: str = "explain") -> tuple[str, str | None]:
    """The MLflow UI address of a run's report, and the command that serves it when no server does.

    Against a tracking server the address is on the server and the command None. Against a local
    store (a SQLite file or a folder) the address is where ``mlflow ui`` serves, and the command
    starts it on that store; with a relative path it must run in the folder the store is relative to.
    """
    tracking_uri = mlflow.get_tracking_uri()
    experiment_id = _run_info(run_id).experiment_id
    served = tracking_uri.startswith(("http://", "https://"))
    base = tracking_uri.rstrip("/") if served else LOCAL_UI
    address = f"{base}/#/experiments/{experiment_id}/runs/{run_id}/artifacts/{artifact_dir}/report.html"
    return address, None if served else f"mlflow ui --backend-store-uri {tracking_uri}"


def report_hint(run_id: str, artifact_dir: str = "explain") -> str:
    """Where to open a run's report in the MLflow UI, as a sentence for the user (what the CLI prints)."""
    address, command = report_address(run_id, artifact_dir)
    if command is None:
        return f"Open the report in the MLflow UI: {address}"
    return f"Start the MLflow UI in this folder with `{command}`, then open the report: {address}"


def check_run(run_id: str) -> None:
    """Raise MLflow's ``RESOURCE_DOES_NOT_EXIST`` error when the tracking store has no run ``run_id``."""
    MlflowClient().get_run(run_id)


def artifact_root(run_id: str) -> str:
    """The artifact URI of run ``run_id``."""
    return _run_info(run_id).artifact_uri.rstrip("/")


def parent_run_id(run_id: str) -> str | None:
    """The id of the run that run ``run_id`` is nested in (``start_run(nested=True)``, a sweep's trial), or None."""
    active = mlflow.active_run()
    run = active if active is not None and active.info.run_id == run_id else MlflowClient().get_run(run_id)
    return run.data.tags.get(PARENT_TAG)


def _run_info(run_id: str) -> Any:
    """The ``RunInfo`` of run ``run_id``: the active run's when it is that run (no call), else MLflow's."""
    active = mlflow.active_run()
    return active.info if active is not None and active.info.run_id == run_id else MlflowClient().get_run(run_id).info


def artifact_uris(run_id: str, folder: str) -> dict[str, str]:
    """Every artifact under ``folder`` of a run: path relative to ``folder`` -> full artifact URI."""
    client = MlflowClient()
    root = artifact_root(run_id)
    uris, pending = {}, [folder]
    while pending:
        for item in client.list_artifacts(run_id, pending.pop()):
            if item.is_dir:
                pending.append(item.path)
            else:
                uris[item.path[len(folder) + 1 :]] = f"{root}/{item.path}"
    return uris


def log_metrics(
    client: MlflowClient, run_id: str, metrics: dict[str, float], tags: dict[str, str] | None = None, step: int = 0
) -> None:
    """Log ``metrics`` at ``step``, and ``tags`` with the last of them, in batches of MLflow's maximum size."""
    now = int(time.time() * 1000)
    entries = [Metric(key, float(value), now, step) for key, value in metrics.items()]
    run_tags = [RunTag(key, value) for key, value in (tags or {}).items()]
    if not entries and not run_tags:
        return
    size = _BATCH - len(run_tags)  # MLflow counts metrics and tags together (tags: at most 100 a call)
    batches = [entries[start : start + size] for start in range(0, len(entries), size)] or [[]]
    for batch in batches[:-1]:
        client.log_batch(run_id, metrics=batch)
    client.log_batch(run_id, metrics=batches[-1], tags=run_tags)


def explanation_metrics(explanation: Explanation) -> dict[str, float]:
    """Every metric of an explanation, keyed as docs/architecture.md lays out (each method's own and run-level)."""
    metrics: dict[str, float] = {}
    features = key_parts(explanation.reported_features)
    table = explanation.importances
    for result in explanation.tabular_results:
        outputs = key_parts(result.outputs)
        for output, feature, importance, std in _rows(table, result.method, "output", "feature", "importance", "std"):
            suffix = "" if output == result.primary_output else f".{outputs[output]}"
            metrics[f"{result.metric_prefix}{suffix}/{features[feature]}"] = importance
            if result.metric_std:
                metrics[f"{result.metric_prefix}_std{suffix}/{features[feature]}"] = std
    for result in explanation.results.values():
        metrics.update(result.run_metrics())
    if explanation.drift is not None:
        metrics["explain/drift_ndcg"] = explanation.drift.ndcg
        metrics["explain/drift_spearman"] = explanation.drift.spearman
        metrics["explain/drift_top_k_overlap"] = explanation.drift.top_k_overlap
    for name, seconds in explanation.timings.items():
        metrics[f"explain/time_{name}_s"] = seconds
    metrics["explain/rows_validation"] = explanation.n_rows
    return metrics


def _rows(table: pd.DataFrame, method: str, *columns: str) -> Iterator[tuple]:
    """The ``columns`` of the importance table's rows of ``method``, as plain Python values."""
    rows = table[table["method"] == method]
    return zip(*(rows[column].tolist() for column in columns), strict=True)


def find_runs(
    experiment_names: list[str] | None = None,
    experiment_ids: list[str] | None = None,
    run_ids: list[str] | None = None,
    filter_string: str = "",
    max_runs: int = 50,
) -> tuple[list, list[str]]:
    """Runs to compare (comparison runs left out) and notes on runs that were skipped."""
    client, notes = MlflowClient(), []
    if run_ids:
        runs = []
        for run_id in run_ids:
            try:
                run = client.get_run(run_id)
            except MlflowException:
                notes.append(f"Run {run_id} was not found in the tracking store {mlflow.get_tracking_uri()}; skipped.")
                continue
            if run.info.lifecycle_stage == "deleted":
                notes.append(f"Run {run_id} is deleted; skipped.")
            else:
                runs.append(run)
    else:
        ids = list(experiment_ids or [])
        for name in experiment_names or []:
            experiment = client.get_experiment_by_name(name)
            if experiment is None:
                raise InvalidInputError(f"There is no experiment named {name!r}.")
            ids.append(experiment.experiment_id)
        if not ids:
            raise InvalidInputError("Name the runs to compare: experiment names, experiment ids or run ids.")
        runs = client.search_runs(ids, filter_string, max_results=max_runs, order_by=["attributes.start_time DESC"])
    return [run for run in runs if run.data.tags.get(KIND_TAG) != "comparison"], notes


@_without_progress_bars()
def read_importances(run: Any, artifact_dir: str, order_metric: str | None = None) -> RunImportances | None:
    """A run's logged importance table (None when the run has no explanation)."""
    client = MlflowClient()
    try:
        with tempfile.TemporaryDirectory() as folder:
            path = client.download_artifacts(run.info.run_id, f"{artifact_dir}/importances.csv", folder)
            table = pd.read_csv(path, keep_default_na=False, na_values=[""])
    except (MlflowException, OSError):
        return None
    table["feature"] = table["feature"].astype(str)
    table["output"] = table["output"].astype(str)
    return RunImportances(
        run_id=run.info.run_id,
        run_name=run.info.run_name or "",
        experiment_name=_experiment_name(run.info.experiment_id),
        start_time=run.info.start_time,
        table=table,
        order_value=run.data.metrics.get(order_metric) if order_metric else None,
    )


def baseline_match_tags(explanation: Explanation) -> dict[str, str]:
    """The tags a baseline of the same model family and features has: the explanation's own."""
    tags = {FAMILY_TAG: explanation.model_family} if explanation.model_family else {}
    return tags | ({FEATURE_SET_TAG: explanation.feature_set} if explanation.feature_names else {})


def find_baseline(run_id: str, spec: str, same: dict[str, str] | None = None) -> Any | None:
    """The run a new explanation is compared with: ``previous``, ``best:<metric>`` or a run id.

    One search returning one run: the latest (or best) earlier explained run of the same experiment
    (the status-tag filter also leaves out comparison runs, which have no status) having the tags
    ``same`` (such as :func:`baseline_match_tags`); the run itself is read from the active run when it
    is the one being explained. A run named by its id is returned whatever its tags.
    """
    client = MlflowClient()
    info = _run_info(run_id)
    explained = f"tags.`{STATUS_TAG}` != 'failed' and attributes.run_id != '{run_id}'"
    explained += "".join(f" and tags.`{key}` = '{value}'" for key, value in (same or {}).items())
    if spec == "previous":
        found = client.search_runs(
            [info.experiment_id],
            f"{explained} and attributes.start_time <= {info.start_time}",
            max_results=1,
            order_by=["attributes.start_time DESC"],
        )
    elif spec.startswith("best:"):
        metric = spec.split(":", 1)[1]
        found = client.search_runs(
            [info.experiment_id],
            f"{explained} and metrics.`{metric}` > -1e308",
            max_results=1,
            order_by=[f"metrics.`{metric}` DESC"],
        )
    else:
        try:
            return client.get_run(spec)
        except MlflowException as err:
            raise InvalidInputError(
                f"compare.baseline {spec!r} is not 'previous', 'best:<metric>' or a run id."
            ) from err
    return found[0] if found else None


def baseline_candidate(run: Any) -> BaselineCandidate:
    """What a run's tags say about it as a baseline: its label, model family and feature set."""
    tags = run.data.tags
    label = f"{run.info.run_name or run.info.run_id[:8]} ({run.info.run_id})"
    return BaselineCandidate(label, tags.get(FAMILY_TAG), tags.get(FEATURE_SET_TAG))


def has_tags(run: Any, tags: dict[str, str]) -> bool:
    """Whether ``run`` has each of ``tags`` with its value."""
    return all(run.data.tags.get(key) == value for key, value in tags.items())


def logged_importances(run: Any, features: list[str]) -> RunImportances | None:
    """A run's primary importances (each tabular method's primary output: first permutation scorer, mean |SHAP|
    over all outputs), from its metrics.

    What drift needs, read from the run as a search returns it (no artifact download); metric key
    parts are mapped back to ``features`` (the names of the explanation compared with it), and a part
    that matches none of them stands for itself. None when the run logged no importance.
    """
    names = {part: name for name, part in key_parts(features).items()}
    methods = {kind.metric_prefix: (name, kind.logged_output) for name, kind in tabular_result_types().items()}
    rows = []
    for key, value in run.data.metrics.items():
        prefix, _, part = key.partition("/")
        if prefix in methods:
            rows.append((*methods[prefix], names.get(part, part), value))
    if not rows:
        return None
    return RunImportances(
        run_id=run.info.run_id,
        run_name=run.info.run_name or "",
        experiment_name=_experiment_name(run.info.experiment_id),
        start_time=run.info.start_time,
        table=pd.DataFrame(rows, columns=["method", "output", "feature", "importance"]),
    )


def log_comparison(directory: Path, experiment_id: str, run_name: str, metrics: dict[str, float]) -> str:
    """Create a comparison run (tag mlflow_explain.kind=comparison) holding ``directory`` as compare/."""
    client = MlflowClient()
    run = client.create_run(experiment_id, run_name=run_name, tags={KIND_TAG: "comparison"})
    log_metrics(client, run.info.run_id, metrics)
    client.log_artifacts(run.info.run_id, str(directory), artifact_path="compare")
    client.set_terminated(run.info.run_id)
    return run.info.run_id


def experiment_id(name: str) -> str:
    """The id of experiment ``name``, created if it does not exist."""
    client = MlflowClient()
    experiment = client.get_experiment_by_name(name)
    return experiment.experiment_id if experiment else client.create_experiment(name)


def _experiment_name(experiment_id: str) -> str:
    return _cached_experiment_name(mlflow.get_tracking_uri(), experiment_id)


@functools.lru_cache(maxsize=256)
def _cached_experiment_name(tracking_uri: str, experiment_id: str) -> str:
    """Experiment names by tracking store: ids restart at 1 in every store, so the id alone names nothing."""
    return MlflowClient(tracking_uri).get_experiment(experiment_id).name

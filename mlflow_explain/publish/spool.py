"""A local spool for explanations that could not reach MLflow, and ``sync`` to upload them later.

When the tracking server is down, the explanation's files, metrics and tags are written to
``logging.spool_dir`` as one entry (a folder with ``manifest.json`` and ``files/``); ``sync``
uploads every entry to its run through ``tracking`` and removes the entries that made it.
This module only handles files; ``tracking`` does the talking to MLflow.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import shutil
import time
import uuid
from pathlib import Path

from . import tracking

logger = logging.getLogger(__name__)

MANIFEST = "manifest.json"
FILES = "files"
SPOOL_VERSION = 1


@dataclasses.dataclass
class SpoolEntry:
    """One spooled explanation: where it goes (run, tracking URI, artifact folder) and what it holds."""

    path: Path
    run_id: str | None
    experiment_id: str | None
    tracking_uri: str
    artifact_dir: str
    metrics: dict[str, float]
    tags: dict[str, str]

    @property
    def files(self) -> Path:
        return self.path / FILES


@dataclasses.dataclass
class SyncResult:
    """What ``sync`` did: entries uploaded (with their run ids) and entries that failed (with the error)."""

    uploaded: dict[str, str] = dataclasses.field(default_factory=dict)
    failed: dict[str, str] = dataclasses.field(default_factory=dict)


def save(
    spool_dir: str | Path,
    directory: Path,
    *,
    run_id: str | None,
    experiment_id: str | None,
    tracking_uri: str,
    artifact_dir: str,
    metrics: dict[str, float],
    tags: dict[str, str],
) -> Path:
    """Copy an explanation's files, metrics and tags into a new spool entry; return the entry's folder.

    The entry is written under a temporary name and renamed when complete, so ``sync`` never
    sees half an entry. With ``run_id`` None (no run could be started), ``sync`` creates a run
    in ``experiment_id``.
    """
    root = Path(spool_dir).expanduser()
    root.mkdir(parents=True, exist_ok=True)
    name = f"{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}-{run_id or 'new-run'}-{uuid.uuid4().hex[:8]}"
    staging = root / f".{name}.partial"
    shutil.copytree(directory, staging / FILES)
    manifest = {
        "spool_version": SPOOL_VERSION,
        "run_id": run_id,
        "experiment_id": experiment_id,
        "tracking_uri": tracking_uri,
        "artifact_dir": artifact_dir,
        "metrics": metrics,
        "tags": tags,
    }
    (staging / MANIFEST).write_text(json.dumps(manifest, indent=2, allow_nan=True), encoding="utf-8")
    staging.rename(root / name)
    return root / name


def entries(spool_dir: str | Path) -> list[SpoolEntry]:
    """The complete entries in ``spool_dir``, oldest first (none when the folder does not exist)."""
    root = Path(spool_dir).expanduser()
    if not root.is_dir():
        return []
    found = []
    for manifest_path in sorted(root.glob(f"*/{MANIFEST}")):
        if manifest_path.parent.name.startswith("."):
            continue
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
        found.append(
            SpoolEntry(
                path=manifest_path.parent,
                run_id=manifest["run_id"],
                experiment_id=manifest["experiment_id"],
                tracking_uri=manifest["tracking_uri"],
                artifact_dir=manifest["artifact_dir"],
                metrics=manifest["metrics"],
                tags=manifest["tags"],
            )
        )
    return found


def sync(spool_dir: str | Path, tracking_uri: str | None = None) -> SyncResult:
    """Upload every spooled explanation to its run and remove the entries that were uploaded.

    Parameters
    ----------
    spool_dir : str or Path
        The spool folder (``logging.spool_dir``).
    tracking_uri : str, default=None
        Server to upload to; default the one each entry was meant for.

    Returns
    -------
    SyncResult
        Uploaded entries (entry name -> run id) and failed ones (entry name -> error); a failed
        entry stays in the spool for the next ``sync``.
    """
    result = SyncResult()
    for entry in entries(spool_dir):
        try:
            run_id = tracking.upload(
                entry.run_id,
                entry.metrics,
                entry.tags,
                entry.files,
                entry.artifact_dir,
                tracking_uri or entry.tracking_uri,
                entry.experiment_id,
            )
        except Exception as err:
            result.failed[entry.path.name] = f"{type(err).__name__}: {err}"
            logger.warning("mlflow_explain: could not upload spooled %s: %s", entry.path.name, err)
            continue
        shutil.rmtree(entry.path)
        result.uploaded[entry.path.name] = run_id
        logger.info("mlflow_explain: uploaded spooled %s to run %s.", entry.path.name, run_id)
    return result

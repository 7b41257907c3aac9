"""A Spark session from the ``spark`` config section (master, application name, extra conf)."""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Iterator, Mapping
from typing import Any

from pyspark.sql import SparkSession

from ..config import SparkConfig

logger = logging.getLogger(__name__)


def spark_session(config: SparkConfig) -> SparkSession:
    """The active Spark session, or a new one on ``config.master`` (``local[*]`` by default).

    Spark's Python workers run the interpreter in ``PYSPARK_PYTHON``; it is set to the current
    one when unset, so a local session's workers see the same packages as the driver.

    Parameters
    ----------
    config : SparkConfig
        The ``spark`` section of the config.

    Returns
    -------
    SparkSession
    """
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    builder = SparkSession.builder.master(config.master).appName(config.app_name)
    for key, value in _settings(config.conf):
        builder = builder.config(key, str(value).lower() if isinstance(value, bool) else str(value))
    session = builder.getOrCreate()
    logger.info("Spark session on %s (Spark %s).", session.sparkContext.master, session.version)
    return session


def _settings(conf: Mapping, prefix: str = "") -> Iterator[tuple[str, Any]]:
    """Flat Spark settings: ``--set spark.conf.spark.driver.memory=4g`` arrives as nested mappings."""
    for key, value in conf.items():
        if isinstance(value, Mapping):
            yield from _settings(value, f"{prefix}{key}.")
        else:
            yield f"{prefix}{key}", value

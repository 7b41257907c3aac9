"""Rewrite the defaults files from the config models: ``python configs/write_default.py``.

Writes ``mlflow_explain/default_config.yaml`` (shipped in the package) and ``configs/default.yaml``
(what the README points at), both the text of ``mlflow_explain.config.defaults_yaml()``.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from mlflow_explain.config import DEFAULT_CONFIG_PATH, defaults_yaml  # noqa: E402

if __name__ == "__main__":
    text = defaults_yaml()
    for path in (DEFAULT_CONFIG_PATH, ROOT / "configs" / "default.yaml"):
        path.write_text(text, encoding="utf-8")
        print(f"wrote {path.relative_to(ROOT)}")  # noqa: T201

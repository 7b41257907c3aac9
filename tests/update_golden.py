"""Regenerate ``tests/golden/`` from the current code, after a deliberate change of what runs hold.

    python tests/update_golden.py            # every case of tests/test_run_contract.py
    python tests/update_golden.py -k drift   # some cases (any pytest option passes through)

Review the diff of ``tests/golden/`` before committing it: it is what changed for users.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

if __name__ == "__main__":
    os.environ["MLFLOW_EXPLAIN_UPDATE_GOLDEN"] = "1"
    root = Path(__file__).resolve().parents[1]
    sys.exit(
        pytest.main(
            [
                "-q",
                "-p",
                "no:cacheprovider",
                "--rootdir",
                str(root),
                str(root / "tests" / "test_run_contract.py"),
                *sys.argv[1:],
            ]
        )
    )

"""Packaging: every package the library imports is declared; the sdist ships the tests whole, the wheel the data."""

from __future__ import annotations

import ast
import configparser
import importlib.metadata
import re
import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

from .helpers import REPOSITORY

PACKAGE = REPOSITORY / "mlflow_explain"
# the extras users install; test and bench are for this repository
RUNTIME_EXTRAS = ("torch", "lightning", "spark", "xgboost", "lightgbm", "catboost")
NOT_PACKAGED = ("*.egg-info", "__pycache__", ".*_cache", ".git", ".venv", "build", "dist", "test-artifacts", "mlruns")


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _requirement_names(lines: str) -> set[str]:
    return {_canonical(re.match(r"[A-Za-z0-9._-]+", line.strip()).group()) for line in lines.strip().splitlines()}


def _declared() -> set[str]:
    setup = configparser.ConfigParser()
    setup.read(REPOSITORY / "setup.cfg")
    names = _requirement_names(setup["options"]["install_requires"])
    for extra in RUNTIME_EXTRAS:
        names |= _requirement_names(setup["options.extras_require"][extra])
    return names


def _imported_top_level_modules() -> dict[str, str]:
    """Top-level names of the absolute imports anywhere in the package (lazy ones too), each with one file."""
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                names = [node.module]
            else:
                continue
            for name in names:
                found.setdefault(name.split(".")[0], path.relative_to(REPOSITORY).as_posix())
    return found


def test_every_imported_third_party_package_is_declared():
    distributions = importlib.metadata.packages_distributions()
    declared = _declared()
    undeclared = []
    for module, where in _imported_top_level_modules().items():
        if module in sys.stdlib_module_names or module == "mlflow_explain":
            continue
        providers = {_canonical(name) for name in distributions.get(module, [])}
        if not providers & declared:
            undeclared.append(f"{module} (imported in {where}, from {sorted(providers) or 'nothing installed'})")
    assert not undeclared, "imported but in neither install_requires nor the torch/spark extras: " + ", ".join(
        undeclared
    )


def _files(folder: Path) -> set[str]:
    return {
        path.relative_to(REPOSITORY).as_posix()
        for path in folder.rglob("*")
        if path.is_file() and "__pycache__" not in path.parts
    }


@pytest.mark.integration
@pytest.mark.slow
def test_the_sdist_ships_the_tests_with_their_helpers_and_the_wheel_the_package_data(tmp_path):
    pytest.importorskip("build")
    source, output = tmp_path / "source", tmp_path / "dist"
    shutil.copytree(
        REPOSITORY,
        source,
        symlinks=True,  # a symlinked data file must reach the sdist and the wheel as the file
        ignore=shutil.ignore_patterns(*NOT_PACKAGED, "*.db"),
    )
    done = subprocess.run(
        [sys.executable, "-m", "build", "--no-isolation", "--sdist", "--wheel", "--outdir", str(output), str(source)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, (done.stdout + done.stderr)[-3000:]
    [sdist_path], [wheel_path] = output.glob("*.tar.gz"), output.glob("*.whl")

    with tarfile.open(sdist_path) as sdist:
        in_sdist = {name.split("/", 1)[1] for name in sdist.getnames() if "/" in name}
    needed = _files(REPOSITORY / "tests") | _files(REPOSITORY / "examples") | _files(REPOSITORY / "benchmarks")
    needed |= {"configs/default.yaml", "constraints/ci.txt", "setup.cfg", "pyproject.toml", "README.md"}
    assert not needed - in_sdist, f"missing from the sdist: {sorted(needed - in_sdist)}"

    with zipfile.ZipFile(wheel_path) as wheel:
        in_wheel = {name: wheel.read(name) for name in wheel.namelist() if not name.startswith("mlflow_explain-")}
    package_files = _files(PACKAGE)
    assert set(in_wheel) == package_files, "the wheel holds the package, all of it, and nothing else"
    data_files = [name for name in package_files if not name.endswith(".py")]
    assert data_files, "the package has data files (the default config)"
    for name in data_files:
        assert in_wheel[name] == (REPOSITORY / name).read_bytes(), f"{name} is in the wheel as the file itself"

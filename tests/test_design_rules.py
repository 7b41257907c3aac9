"""The layering DESIGN.md asks for, read from the source: pure layers free of MLflow, no import cycles.

Every ``import`` statement counts, wherever it stands: at the top, inside a function, or under
``if TYPE_CHECKING:`` (a type-only import still ties two modules together).
"""

from __future__ import annotations

import ast
import functools
import json
import subprocess
import sys
from pathlib import Path

import pytest

import mlflow_explain

PACKAGE = Path(mlflow_explain.__file__).resolve().parent
ROOT = PACKAGE.name

# Computation and drawing: they take results and return results or files, and never talk to MLflow.
PURE = [
    "methods",  # every module in it
    "compare",
    "plots",
    "report",
    "diagnostics",
    "results",
    "artifacts",
    "engine",
    "tabular_engine",
    "image_engine",
    "spark.engine",
]
FORBIDDEN = ("mlflow", f"{ROOT}.tracking")
OPTIONAL = ("torch", "captum", "pyspark")  # a pure module needing one of these is skipped when it is missing


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


@functools.cache
def modules() -> dict[str, Path]:
    """Every module of the package, by dotted name."""
    return {module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def imports(name: str, path: Path) -> set[str]:
    """The absolute names of the modules ``name`` imports, wherever the statement stands.

    ``from . import tracking`` names the submodule ``tracking``; ``from .results import Task`` names
    ``results``; ``from . import load_config`` names the package itself (its ``__init__`` runs).
    """
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    known = modules()
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = package.split(".")
                source = ".".join(parts[: len(parts) - node.level + 1] + ([node.module] if node.module else []))
            else:
                source = node.module
            for alias in node.names:
                submodule = f"{source}.{alias.name}"
                found.add(submodule if submodule in known else source)
    return found


def package_graph() -> dict[str, set[str]]:
    """Module -> the package's modules it imports (names that are attributes, not modules, dropped)."""
    known = modules()
    return {
        name: {target for target in imports(name, path) if target in known and target != name}
        for name, path in known.items()
    }


def pure_modules() -> list[str]:
    names = []
    for module in modules():
        relative = module.removeprefix(f"{ROOT}.")
        if any(relative == entry or relative.startswith(f"{entry}.") for entry in PURE):
            names.append(module)
    return names


def test_every_listed_pure_module_exists():
    known = {name.removeprefix(f"{ROOT}.") for name in modules()}
    assert [entry for entry in PURE if entry not in known] == []


@pytest.mark.parametrize("module", pure_modules())
def test_pure_module_imports_neither_mlflow_nor_tracking(module):
    imported = imports(module, modules()[module])
    offending = sorted(name for name in imported if any(name == bad or name.startswith(f"{bad}.") for bad in FORBIDDEN))
    assert offending == [], f"{module} imports {offending}: computation and drawing stay free of MLflow"


_LOADED_AFTER_IMPORTING = """
import importlib, json, sys, types
for name, path in {packages!r}.items():  # the modules alone: a package's public __init__ may import anything
    package = types.ModuleType(name)
    package.__path__ = [path]
    sys.modules[name] = package
report = {{}}
for name in {names!r}:
    try:
        importlib.import_module(name)
    except ModuleNotFoundError as err:
        if err.name.split(".")[0] not in {optional!r}:
            raise
        report[name] = "skipped: " + err.name
        continue
    loaded = [bad for bad in {forbidden!r} if bad in sys.modules]
    if loaded:
        report[name] = loaded
        break
print(json.dumps(report))
"""


def test_importing_the_pure_modules_loads_no_mlflow():
    """What the pure modules pull in through their own imports and their libraries', in a fresh interpreter."""
    packages = {name: str(path.parent) for name, path in modules().items() if path.name == "__init__.py"}
    script = _LOADED_AFTER_IMPORTING.format(
        packages=packages, names=pure_modules(), optional=OPTIONAL, forbidden=FORBIDDEN
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    loaded = {name: found for name, found in report.items() if not isinstance(found, str)}
    assert loaded == {}, f"importing this module loaded MLflow: {loaded}"


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of ``graph`` as ``[a, b, ..., a]``, or None."""
    state: dict[str, str] = {}  # "open" while on the current path, "done" once fully explored
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = "open"
        path.append(node)
        for target in sorted(graph.get(node, ())):
            if state.get(target) == "open":
                return path[path.index(target) :] + [target]
            if target not in state and (cycle := visit(target)):
                return cycle
        path.pop()
        state[node] = "done"
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_find_cycle_finds_one_and_only_one():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": set()}) is None
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == ["a", "b", "c", "a"]


def test_the_package_has_no_import_cycle():
    cycle = find_cycle(package_graph())
    assert cycle is None, "import cycle (type-only imports included): " + " -> ".join(cycle)


def test_the_graph_sees_function_level_and_type_only_imports():
    graph = package_graph()
    assert f"{ROOT}.tracking" in graph[f"{ROOT}.cli"], "cli imports tracking inside a function"
    assert f"{ROOT}.results" in graph[f"{ROOT}.plots"]


_PUBLIC_NAMES = """
import mlflow_explain

mlflow_explain.explain  # a lazy package (PEP 562) imports the tabular engine and the pipeline here
import mlflow_explain.compare  # loading a submodule sets the package attribute of its name, unless loaded before
from mlflow_explain import Comparison
from mlflow_explain.compare_api import compare
from mlflow_explain.results import Comparison as comparison_type

assert mlflow_explain.compare is compare, f"mlflow_explain.compare is {mlflow_explain.compare!r}"
assert Comparison is comparison_type
"""


def test_public_compare_stays_the_function_once_the_metrics_module_is_loaded():
    """``mlflow_explain.compare(...)`` is the function even though ``mlflow_explain/compare.py`` is a module.

    Importing a submodule binds it as an attribute of its package; a lazy ``__init__`` must bind the
    public ``compare`` in a way that survives that (the metrics module is loaded by every explanation).
    """
    done = subprocess.run([sys.executable, "-c", _PUBLIC_NAMES], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]

"""The layering docs/architecture.md lays down, read from the source, by folder.

Every module belongs to the layer of its folder (a module at the package's top is the shared
vocabulary; ``mlflow_explain/__init__.py`` is the public API), so a new module is covered the day
it is added, without editing a list here. The rules:

- the pure layers (the vocabulary, ``methods``, ``output``, ``engines``) never import MLflow or
  ``publish``;
- each layer imports only the layers below it (modules of one layer import each other freely);
- no import cycles.

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

VOCABULARY = "vocabulary"  # the modules at the package's top: config, errors, results, data, models, ...
PUBLIC_API = "public API"  # mlflow_explain/__init__.py
# Layers from the bottom up: a layer may import those of a lower rank; layers of one rank never import each other.
RANKS = {
    VOCABULARY: 0,
    "methods": 1,
    "output": 1,
    "engines": 2,
    "publish": 3,
    "serving": 4,
    "spark": 4,
    "triggers": 5,
    PUBLIC_API: 6,
}
# Modules at the top that belong to the public API: import paths that logged models load from.
PUBLIC_PATHS = ("serving_model",)  # explainers logged by 0.1.0 import ExplainerModel from here
PURE = (VOCABULARY, "methods", "output", "engines")  # computation and drawing: never MLflow, never publishing
FORBIDDEN = ("mlflow", f"{ROOT}.publish")
OPTIONAL = ("torch", "captum", "pyspark")  # a pure module needing one of these is skipped when it is missing


def layer(module: str) -> str:
    """The layer of a module of the package: its first folder, the vocabulary at the top, or the public API."""
    parts = module.split(".")[1:]
    if not parts or parts[0] in PUBLIC_PATHS:
        return PUBLIC_API
    return parts[0] if (PACKAGE / parts[0]).is_dir() else VOCABULARY


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
    return [module for module in modules() if layer(module) in PURE]


def layering_violations(graph: dict[str, set[str]]) -> list[str]:
    """Every import of ``graph`` that goes up a layer or sideways into another layer of the same rank."""
    found = []
    for module, targets in sorted(graph.items()):
        for target in sorted(targets):
            source_layer, target_layer = layer(module), layer(target)
            if source_layer != target_layer and RANKS[target_layer] >= RANKS[source_layer]:
                found.append(f"{module} ({source_layer}) imports {target} ({target_layer})")
    return found


def test_every_folder_of_the_package_is_a_known_layer():
    folders = {path.name for path in PACKAGE.iterdir() if path.is_dir() and (path / "__init__.py").exists()}
    assert folders - set(RANKS) == set(), "a new folder needs its place in RANKS (and in docs/architecture.md)"


def test_every_folder_says_what_lives_there_and_what_it_may_import():
    for path in sorted(PACKAGE.rglob("__init__.py")):
        docstring = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8"))) or ""
        assert docstring, f"{path.relative_to(PACKAGE.parent)} has no docstring"
        if path.parent.parent == PACKAGE:
            assert "Layer:" in docstring and "may import" in docstring.lower(), path.relative_to(PACKAGE.parent)


def test_each_layer_imports_only_the_layers_below_it():
    violations = layering_violations(package_graph())
    assert violations == [], "imports against the layering (docs/architecture.md):\n" + "\n".join(violations)


def test_a_misplaced_import_is_caught():
    """The rule itself: an engine importing publishing, or methods importing output, is reported."""
    graph = {
        f"{ROOT}.engines.tabular": {f"{ROOT}.publish.tracking", f"{ROOT}.methods.shap", f"{ROOT}.results"},
        f"{ROOT}.methods.shap": {f"{ROOT}.output.plots"},
        f"{ROOT}.triggers.explain": {f"{ROOT}.engines.tabular"},
    }
    assert layering_violations(graph) == [
        f"{ROOT}.engines.tabular (engines) imports {ROOT}.publish.tracking (publish)",
        f"{ROOT}.methods.shap (methods) imports {ROOT}.output.plots (output)",
    ]


@pytest.mark.parametrize("module", pure_modules())
def test_pure_module_imports_neither_mlflow_nor_publish(module):
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
    modules = [loaded for loaded in sys.modules if loaded not in {packages!r}]  # the bare folders are stand-ins
    loaded = [bad for bad in {forbidden!r} if any(m == bad or m.startswith(bad + ".") for m in modules)]
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
    assert f"{ROOT}.publish.tracking" in graph[f"{ROOT}.triggers.cli"], "cli imports tracking inside a function"
    assert f"{ROOT}.methods.image_attribution" in graph[f"{ROOT}.engines.image"], "a type-only import"
    assert f"{ROOT}.results" in graph[f"{ROOT}.output.plots"]


_PUBLIC_NAMES = """
import mlflow_explain

mlflow_explain.explain  # a lazy package (PEP 562) imports the tabular engine and the publishing flow here
import mlflow_explain.engines.comparison, mlflow_explain.triggers.autolog.autolog, mlflow_explain.triggers.compare
from mlflow_explain import Comparison
from mlflow_explain.triggers.autolog.autolog import autolog
from mlflow_explain.triggers.compare import compare
from mlflow_explain.results import Comparison as comparison_type

assert mlflow_explain.compare is compare, f"mlflow_explain.compare is {mlflow_explain.compare!r}"
assert mlflow_explain.autolog is autolog, f"mlflow_explain.autolog is {mlflow_explain.autolog!r}"
assert Comparison is comparison_type
"""


def test_public_names_stay_the_functions_once_their_modules_are_loaded():
    """``mlflow_explain.compare(...)`` and ``mlflow_explain.autolog(...)`` are the functions, whatever is loaded.

    Importing a submodule binds it as an attribute of its package; the modules defining these
    functions live in ``triggers/``, so loading them (every explanation loads the comparison
    metrics) never rebinds the public names.
    """
    done = subprocess.run([sys.executable, "-c", _PUBLIC_NAMES], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]

"""What having mlflow_explain installed costs at import time, and which heavy modules each entry loads.

Every figure is the median over ``--repeats`` fresh interpreters of the seconds one statement takes
inside that interpreter (interpreter start-up not included; it is reported on its own line), with
the heavy modules present in ``sys.modules`` afterwards:

- ``import mlflow.models.evaluation``: MLflow 3.17 does not load evaluator plugins here yet;
- the evaluator registry (``mlflow.models.evaluation.list_evaluators()``): where MLflow loads every
  ``mlflow.model_evaluator`` entry point, as each ``mlflow.models.evaluate()`` call does; measured
  with the plugin installed and without it;
- ``import mlflow_explain``, ``mlflow-explain --help`` and ``mlflow-explain config``.

"Installed" is this interpreter with this checkout first on ``PYTHONPATH`` (so the checkout's code
answers the installed entry point). "Not installed" is a throwaway virtualenv whose only site folder
is a copy of this interpreter's site-packages made of symbolic links, minus the plugin's dist-info
and its editable-install finder: the same packages, and no ``explain`` entry point (the script
checks both).

    python benchmarks/import_time.py [--repeats 5]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import sysconfig
import tempfile
import time
from pathlib import Path

REPOSITORY = Path(__file__).resolve().parent.parent
HEAVY = ("shap", "sklearn", "scipy", "matplotlib", "torch", "pyspark", "xgboost", "lightgbm")
PLUGIN_HEAVY = (
    "mlflow_explain.engines.base",
    "mlflow_explain.methods",
    "mlflow_explain.output.plots",
    "mlflow_explain.triggers.explain",
)

CASES = {
    "python -c pass (interpreter start-up, wall seconds)": None,
    "import mlflow.models.evaluation": "import mlflow.models.evaluation",
    "mlflow.models.evaluation.list_evaluators() (loads the entry points)": (
        "import mlflow.models.evaluation\nEVALUATORS = mlflow.models.evaluation.list_evaluators()"
    ),
    "import mlflow_explain": "import mlflow_explain",
    "mlflow-explain --help": "from mlflow_explain.triggers.cli import main\nmain(['--help'])",
    "mlflow-explain config": "from mlflow_explain.triggers.cli import main\nmain(['config'])",
}

# Runs one statement, then writes its seconds, the heavy modules loaded and the evaluators to a file.
_PROBE = """
import contextlib, io, json, sys, time
EVALUATORS = None
started = time.perf_counter()
with contextlib.redirect_stdout(io.StringIO()):
    try:
        exec(compile({statement!r}, "<statement>", "exec"))
    except SystemExit:
        pass  # click's exit after --help or a command
seconds = time.perf_counter() - started
prefixes = {prefixes!r}
loaded = sorted(p for p in prefixes if any(m == p or m.startswith(p + ".") for m in sys.modules))
with open({out!r}, "w") as handle:
    json.dump({{"seconds": seconds, "loaded": loaded, "evaluators": EVALUATORS}}, handle)
"""


def without_plugin(folder: Path) -> Path:
    """A virtualenv seeing this interpreter's site-packages without the plugin's dist-info or finder; its python."""
    site_packages = Path(sysconfig.get_paths()["purelib"])
    shared = folder / "shared-site-packages"
    shared.mkdir()
    for entry in site_packages.iterdir():
        name = entry.name.lower()
        if name.startswith(("mlflow_explain", "mlflow-explain", "__editable__.mlflow_explain", "__editable___mlflow")):
            continue
        (shared / entry.name).symlink_to(entry)
    venv = folder / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    own_site = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    # addsitedir, not a bare path line: the shared folder's own .pth files run, as in the original.
    (Path(own_site) / "shared_site_packages.pth").write_text(f"import site; site.addsitedir({str(shared)!r})\n")
    return python


def measure(interpreters: dict[str, tuple[Path, dict]], statement: str | None, folder: Path, repeats: int) -> dict:
    """Per interpreter: median seconds of ``statement``, the heavy modules it loaded and the evaluators.

    The interpreters take turns (in alternating order), so a change of the machine's load hits them alike.
    """
    seconds: dict[str, list[float]] = {name: [] for name in interpreters}
    found: dict[str, dict] = {}
    for repeat in range(repeats):
        for name in list(interpreters)[:: 1 if repeat % 2 == 0 else -1]:
            python, env = interpreters[name]
            elapsed, found[name] = _probe(python, env, statement, folder)
            seconds[name].append(elapsed)
    return {name: {"seconds": statistics.median(seconds[name]), **found[name]} for name in interpreters}


def _probe(python: Path, env: dict[str, str], statement: str | None, folder: Path) -> tuple[float, dict]:
    """One fresh interpreter: the seconds ``statement`` took, and what it loaded (wall seconds of ``pass`` for None)."""
    if statement is None:
        started = time.perf_counter()
        subprocess.run([str(python), "-c", "pass"], check=True, env=env, cwd=folder)
        return time.perf_counter() - started, {"loaded": [], "evaluators": None}
    out = folder / "probe.json"
    code = _PROBE.format(statement=statement, prefixes=HEAVY + PLUGIN_HEAVY + ("mlflow_explain",), out=str(out))
    subprocess.run([str(python), "-c", code], check=True, env=env, cwd=folder)
    result = json.loads(out.read_text())
    return result.pop("seconds"), result


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=5, help="Fresh interpreters per figure (median reported).")
    args = parser.parse_args(argv)
    base_env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONSTARTUP")}
    installed = (Path(sys.executable), base_env | {"PYTHONPATH": str(REPOSITORY)})
    rows = []
    with tempfile.TemporaryDirectory(prefix="import_time_") as tmp:
        folder = Path(tmp)
        interpreters = {"installed": installed, "not installed": (without_plugin(folder), base_env)}
        for label, statement in CASES.items():
            mlflow_side = label.startswith(("python -c", "import mlflow.models", "mlflow.models"))
            chosen = interpreters if mlflow_side else {"installed": installed}
            rows += [(label, name, row) for name, row in measure(chosen, statement, folder, args.repeats).items()]
    for _, plugin, row in rows:
        if row.get("evaluators") is not None and ("explain" in row["evaluators"]) != (plugin == "installed"):
            raise SystemExit(
                f"The explain entry point is {'missing' if plugin == 'installed' else 'found'} {plugin}: "
                "the figures would lie (install the plugin first: pip install -e .)."
            )
    print(f"python {platform.python_version()}, {args.repeats} fresh interpreters per figure (median), {_load()}\n")
    print("| what | plugin | seconds | heavy modules loaded |")
    print("|---|---|---:|---|")
    for label, plugin, row in rows:
        loaded = ", ".join(row["loaded"]) or "none"
        print(f"| {label} | {plugin} | {row['seconds']:.3f} | {loaded} |")


def _load() -> str:
    try:
        return "load average " + " ".join(f"{value:.2f}" for value in os.getloadavg())
    except OSError:
        return "load average unknown"


if __name__ == "__main__":
    main()

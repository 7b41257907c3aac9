"""The README and the documentation site: short, true to the code and the examples, and built strictly."""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from .helpers import REPOSITORY

README = REPOSITORY / "README.md"
DOCS = REPOSITORY / "docs"
MAX_SENTENCE_WORDS = 55  # the README this replaced had sentences of 90 words
QUICK_START = (
    "pip install -e . && python examples/quickstart.py",
    'pip install -e ".[test]" -c constraints/ci.txt && pytest',
)

sys.path.insert(0, str(DOCS))
from gen_config_reference import config_reference  # noqa: E402


def _prose(markdown: str) -> str:
    """The text a person reads as sentences: no code blocks, comments or table rows."""
    markdown = re.sub(r"```.*?```", "", markdown, flags=re.S)
    markdown = re.sub(r"<!--.*?-->", "", markdown, flags=re.S)
    return "\n".join(line for line in markdown.splitlines() if not line.lstrip().startswith("|"))


def sentences(markdown: str) -> list[str]:
    """The sentences of a Markdown text; paragraphs, list items and headings end one."""
    blocks = re.split(r"\n\s*\n|\n(?=\s*(?:[-*]|\d+\.) |#)", "\n" + _prose(markdown))
    blocks = [re.sub(r"^\s*(?:[-*]|\d+\.|#+)\s+", "", " ".join(block.split())) for block in blocks]
    return [sentence for block in blocks for sentence in re.split(r"(?<=[.!?])\s+(?=[A-Z`(*\[])", block) if sentence]


def _pages() -> list[Path]:
    return [README, *sorted(DOCS.rglob("*.md"))]


def test_sentences_splits_on_full_stops_and_list_items():
    text = "One two. Three four!\n\n- five six\n- seven `x.y` eight.\n\n```\nnot. prose.\n```\n| a. | b. |"
    assert sentences(text) == ["One two.", "Three four!", "five six", "seven `x.y` eight."]


def test_the_readme_is_short_and_keeps_the_two_command_quick_start():
    text = README.read_text(encoding="utf-8")
    assert 150 <= len(text.splitlines()) <= 200
    for command in QUICK_START:
        assert command in text, f"the quick start lost {command!r}"
    ci = (REPOSITORY / ".ci" / "run").read_text(encoding="utf-8")
    assert 'pip install -e ".[test]" -c constraints/ci.txt' in ci and "pytest --durations=25" in ci
    assert "mkdocs build --strict" in ci


@pytest.mark.parametrize("page", _pages(), ids=lambda path: str(path.relative_to(REPOSITORY)))
def test_no_sentence_is_too_long_to_read(page):
    long = [s for s in sentences(page.read_text(encoding="utf-8")) if len(s.split()) > MAX_SENTENCE_WORDS]
    assert long == [], f"sentences over {MAX_SENTENCE_WORDS} words: split them"


def test_every_example_is_run_in_the_readme_as_its_docstring_says():
    readme = README.read_text(encoding="utf-8")
    commands = {}
    for path in sorted((REPOSITORY / "examples").glob("*.py")):
        docstring = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8"))) or ""
        found = [line.strip() for line in docstring.splitlines() if f"python examples/{path.name}" in line]
        if found:
            commands[path.name] = found[0]
    assert {"quickstart.py", "autolog_sklearn.py", "gradcam_digits.py"} <= set(commands)
    missing = {name: command for name, command in commands.items() if command not in readme}
    assert missing == {}, "an example's docstring gives another install command than the README"


def test_the_readmes_links_point_at_files_that_exist():
    targets = re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", README.read_text(encoding="utf-8"))
    local = [target for target in targets if not target.startswith(("http://", "https://"))]
    assert local and [target for target in local if not (REPOSITORY / target).exists()] == []


def test_the_configuration_reference_has_every_key_with_its_default():
    from mlflow_explain.config import ExplainConfig

    page = config_reference()
    for name, section in ExplainConfig.model_fields.items():
        options = getattr(section.annotation, "model_fields", None)
        keys = {f"{name}.{key}": option for key, option in options.items()} if options else {name: section}
        for key, option in keys.items():
            row = next((line for line in page.splitlines() if line.startswith(f"| `{key}` |")), None)
            assert row is not None, f"{key} is missing from the configuration reference"
            assert option.description.replace("|", "\\|") in row


def test_the_gallery_shows_files_that_exist_from_every_kind_of_run():
    page = (DOCS / "gallery" / "index.md").read_text(encoding="utf-8")
    linked = set(re.findall(r"\]\(([^)]+\.(?:svg|html))\)", page))
    assert linked and {path for path in linked if not (DOCS / "gallery" / path).exists()} == set()
    for figure in ("shap_beeswarm.svg", "permutation_importance.svg", "report.html", "force_plot_row11.svg"):
        assert any(path.endswith(figure) for path in linked), f"the gallery lacks {figure}"
    assert any(path.startswith("multiclass/shap_beeswarm.") for path in linked), "a beeswarm per class"
    assert any(path.startswith("images/gradcam/") for path in linked)
    assert any(path.startswith("text/tokens/") for path in linked)


@pytest.mark.integration
@pytest.mark.slow
def test_the_site_builds_strictly(tmp_path):
    environment = {**os.environ, "PYTHONPATH": str(REPOSITORY), "NO_MKDOCS_2_WARNING": "1"}
    done = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")],
        cwd=REPOSITORY,
        capture_output=True,
        text=True,
        timeout=300,
        env=environment,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    reference = (tmp_path / "site" / "reference" / "configuration" / "index.html").read_text(encoding="utf-8")
    assert "permutation.n_repeats" in reference
    assert (tmp_path / "site" / "gallery" / "index.html").exists()

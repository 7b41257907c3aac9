"""MkDocs hooks (``hooks:`` in mkdocs.yml): pages generated at build time from the repository itself.

- ``reference/configuration.md``: the configuration reference, from the pydantic models;
- ``performance/<name>.md``: each measured benchmark, ``benchmarks/<NAME>.md`` as its script wrote it.
"""

from __future__ import annotations

import sys
from pathlib import Path

from mkdocs.config.defaults import MkDocsConfig
from mkdocs.structure.files import File, Files

DOCS = Path(__file__).resolve().parent
BENCHMARKS = DOCS.parent / "benchmarks"
sys.path.insert(0, str(DOCS))

from gen_config_reference import config_reference  # noqa: E402


def benchmark_page(path: Path) -> str:
    """A benchmark's results page: the file's text and where it lives."""
    return path.read_text(encoding="utf-8") + f"\n\n*From `benchmarks/{path.name}` in the repository.*\n"


def on_files(files: Files, config: MkDocsConfig) -> Files:
    """Add the generated pages to the site's files."""
    files.append(File.generated(config, "reference/configuration.md", content=config_reference()))
    for path in sorted(BENCHMARKS.glob("*.md")):
        files.append(File.generated(config, f"performance/{path.stem.lower()}.md", content=benchmark_page(path)))
    return files

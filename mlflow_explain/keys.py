"""Turn feature, class and scorer names into valid, unique MLflow metric-key parts and file names."""

from __future__ import annotations

import hashlib
import re
from collections import Counter
from collections.abc import Callable, Iterable

MAX_PART_LENGTH = 180  # leaves room for the longest prefix within MLflow's 250-character keys
_DISALLOWED = re.compile(r"[^A-Za-z0-9_.\- ]+")


def sanitize(name: object) -> str:
    """One name as a metric-key part: ASCII letters, digits, ``_ - .`` and space, no path tricks."""
    text = _DISALLOWED.sub("_", str(name)).strip()
    if not text or set(text) <= {"."}:
        text = "_" * max(len(text), 1)
    if len(text) > MAX_PART_LENGTH:
        text = text[: MAX_PART_LENGTH - 9] + "_" + _digest(name)
    return text


def key_parts(names: Iterable[object]) -> dict[str, str]:
    """Map each distinct name to a sanitized part, unique among them.

    A name that sanitizes to itself keeps it; names that would collide get a stable suffix
    drawn from a hash of the original name, so the mapping does not depend on order.
    """
    return _unique_parts(names, sanitize)


def file_parts(names: Iterable[object]) -> dict[str, str]:
    """Map each distinct name to a part of a file name, unique among them: a key part with no spaces.

    A space in an artifact's name breaks links to it (the MLflow UI's deep links, shells), so
    spaces become underscores; collisions get the same stable suffix as in :func:`key_parts`.
    """
    return _unique_parts(names, lambda name: sanitize(name).replace(" ", "_"))


def _unique_parts(names: Iterable[object], clean: Callable[[object], str]) -> dict[str, str]:
    originals = list(dict.fromkeys(str(name) for name in names))
    cleaned = {name: clean(name) for name in originals}
    counts = Counter(cleaned.values())
    parts = {}
    for name in originals:
        part = cleaned[name]
        if counts[part] > 1 and part != name:
            part = f"{part[: MAX_PART_LENGTH - 9]}_{_digest(name)}"
        parts[name] = part
    return parts


def _digest(name: object) -> str:
    return hashlib.sha1(str(name).encode("utf-8")).hexdigest()[:8]

"""The real-world mail corpus: templates and messages other people wrote.

They are kept beside the repository, never in it (they are other people's
data, each with its source in SOURCES.md): ``MAILBEACON_REALWORLD_DIR`` if
set, else ``<repo>/../shared/emails-realworld`` (where CI's clean clone finds
it), else ``/work/shared/emails-realworld``. Tests skip, saying so, when it
is absent. ``bench/`` imports this module too.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

from mailbeacon.instrument.mime import Text, read_text, walk

ROOT = Path(__file__).resolve().parents[1]
ENV = "MAILBEACON_REALWORLD_DIR"


def corpus_dir() -> Path | None:
    """Where the corpus is, or None."""
    env = os.environ.get(ENV)
    candidates = (
        [Path(env)]
        if env
        else [ROOT.parent / "shared" / "emails-realworld", Path("/work/shared/emails-realworld")]
    )
    for path in candidates:
        if (path / "html").is_dir() and (path / "eml").is_dir():
            return path
    return None


def missing_reason() -> str:
    where = os.environ.get(ENV) or f"{ROOT.parent / 'shared' / 'emails-realworld'}"
    return (
        f"the real-world mail corpus is not at {where} "
        f"(set {ENV} to its folder, the one with html/, eml/ and SOURCES.md)"
    )


def html_files() -> list[Path]:
    base = corpus_dir()
    return sorted((base / "html").glob("*.html")) if base else []


def eml_files() -> list[Path]:
    base = corpus_dir()
    return sorted((base / "eml").glob("*.eml")) if base else []


def largest_html(n: int) -> list[Path]:
    """The ``n`` largest templates (70-90 KB in the shared corpus)."""
    return sorted(html_files(), key=lambda p: p.stat().st_size, reverse=True)[:n]


def html_part_texts(data: bytes) -> Iterator[tuple[int, Text]]:
    """(ordinal, decoded text) of every HTML body part we can read."""
    for part in walk(data):
        if part.content_type != "text/html" or part.attachment:
            continue
        got = read_text(data, part)
        if not isinstance(got, str):
            yield part.ordinal, got

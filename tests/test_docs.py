"""Strings that once went stale in the docs and docstrings stay gone (issue 35)."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
STALE = ["28 minutes", "(default 1200)", "scoreaware.tiny_models", "the same click commands a user types",
         "curate.synth", "curate.schedule", "Top-level packages are"]


@pytest.mark.parametrize("stale", STALE)
def test_stale_strings_are_gone(stale):
    files = [*ROOT.glob("*.md"), *(ROOT / "docs").glob("*.md"), *(ROOT / "src").rglob("*.py"),
             *(ROOT / "tests").rglob("*.py")]
    found = [str(f.relative_to(ROOT)) for f in files if f.name != "test_docs.py" and stale in f.read_text()]
    assert found == [], f"{stale!r} in {found}"

"""Hostile inputs for tests: checkpoints whose unpickling runs code, corrupted manifests."""

from __future__ import annotations

import gzip
import os
from pathlib import Path


class RunsCode:
    """Unpickling this object creates the file `marker`: a stand-in for arbitrary code."""

    def __init__(self, marker: str | os.PathLike) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def save_pickled_checkpoint(path: str | os.PathLike, payload: dict, marker: str | os.PathLike) -> Path:
    """`payload` plus an object whose unpickling writes `marker`, saved with torch.save."""
    import torch

    torch.save({**payload, "trojan": RunsCode(marker)}, path)
    return Path(path)


def truncate_gzip(src: str | os.PathLike, dst: str | os.PathLike, keep: float = 0.6) -> Path:
    """A copy of a gzip file cut off after `keep` of its bytes (an interrupted copy)."""
    data = Path(src).read_bytes()
    Path(dst).write_bytes(data[: max(10, int(len(data) * keep))])
    return Path(dst)


def edit_lines(src: str | os.PathLike, dst: str | os.PathLike, edit) -> Path:
    """Rewrite a JSONL(.gz) manifest line by line: `edit(list[str]) -> list[str]`."""
    opener = gzip.open if str(src).endswith(".gz") else open
    with opener(src, "rt") as f:
        lines = f.read().splitlines()
    out_opener = gzip.open if str(dst).endswith(".gz") else open
    with out_opener(dst, "wt") as f:
        for line in edit(lines):
            f.write(line + "\n")
    return Path(dst)

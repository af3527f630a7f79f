"""Describe a manifest: counts, hours, and the distribution of every numeric field.

Reads the manifest lazily into a table of scalars only (no audio, no arrays), so it runs on
large manifests. The text rendering draws one histogram per field in the terminal; the plot
draws the same histograms as a figure.
"""

from __future__ import annotations

import math
import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from scoreaware.core.files import read_jsonl
from scoreaware.core.manifests import read_cuts
from scoreaware.core.output import QUARANTINE, sibling
from scoreaware.schemas.fields import CLAP_SCORE, COMBINED_SCORE, LOUDNESS_LUFS, SELECTION_RANK, WINDOW_START
from scoreaware.schemas.tables import iter_table_chunks

# Fields shown first, with units; any other numeric custom field follows.
KNOWN_FIELDS = {
    "duration": "duration (s)",
    LOUDNESS_LUFS: "loudness (LUFS)",
    CLAP_SCORE: "CLAP score",
    "reward": "reward",
    COMBINED_SCORE: "combined score",
    "caption_words": "caption length (words)",
}
_NOT_FIELDS = {"start", "sampling_rate", "num_channels", WINDOW_START, SELECTION_RANK}


@dataclass
class Description:
    """What `describe` found in one manifest."""

    path: str
    cuts: int = 0
    hours: float = 0.0
    recordings: int = 0
    cut_types: Counter = field(default_factory=Counter)
    sampling_rates: Counter = field(default_factory=Counter)
    with_caption: int = 0
    values: dict[str, np.ndarray] = field(default_factory=dict)
    quarantine: Counter = field(default_factory=Counter)


def describe_manifest(path: str | os.PathLike) -> Description:
    """Scan a cuts manifest (and its quarantine, when present)."""
    path = Path(path)
    desc = Description(path=str(path))
    columns: dict[str, list[np.ndarray]] = {}
    recordings: set[str] = set()
    for table in iter_table_chunks(read_cuts(path)):
        desc.cuts += len(table)
        desc.hours += float(table["duration"].sum()) / 3600
        desc.cut_types.update(table["cut_type"])
        desc.sampling_rates.update(table["sampling_rate"].astype(int))
        recordings.update(table["recording_id"])
        if "caption" in table:
            captions = table["caption"].where(table["caption"].notna(), "")
            desc.with_caption += int((captions.astype(str).str.strip() != "").sum())
            table = table.assign(caption_words=captions.astype(str).str.split().str.len())
        for name in table.columns:
            if name in _NOT_FIELDS or name.startswith("has_"):
                continue
            column = table[name]
            if column.dtype == bool or not pd.api.types.is_numeric_dtype(column):
                continue  # ids and text, even when they look like numbers
            columns.setdefault(name, []).append(column.to_numpy(dtype=float))
    desc.recordings = len(recordings)
    ordered = [n for n in KNOWN_FIELDS if n in columns] + sorted(n for n in columns if n not in KNOWN_FIELDS)
    desc.values = {name: np.concatenate(columns[name]) for name in ordered}
    quarantine = sibling(path, QUARANTINE)
    if quarantine.is_file():
        desc.quarantine = Counter(row.get("reason", "?") for row in read_jsonl(quarantine))
    return desc


def _label(name: str) -> str:
    return KNOWN_FIELDS.get(name, name)


def histogram_lines(values: np.ndarray, bins: int = 10, width: int = 40) -> list[str]:
    """A text histogram, one line per bin: ``  lo – hi  ████▌ count``."""
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return ["  (no finite values)"]
    lo, hi = float(finite.min()), float(finite.max())
    if math.isclose(lo, hi):
        return [f"  {lo:>9.3g}            {'█' * width} {finite.size}"]
    if np.all(finite == np.round(finite)) and hi - lo < 2 * bins:  # small integers: one bin each
        edges = np.arange(lo, hi + 2) - 0.5
        counts, edges = np.histogram(finite, bins=edges)
    else:
        counts, edges = np.histogram(finite, bins=bins, range=(lo, hi))
    top = counts.max()
    lines = []
    for count, a, b in zip(counts, edges[:-1], edges[1:]):
        eighths = int(round(8 * width * count / top))
        bar = "█" * (eighths // 8) + ("▏▎▍▌▋▊▉"[eighths % 8 - 1] if eighths % 8 else "")
        lines.append(f"  {a:>9.3g} – {b:<9.3g} {bar:<{width}} {count}")
    return lines


def format_description(desc: Description, bins: int = 10) -> str:
    """The description as terminal text."""
    lines = [
        f"{desc.path}",
        f"  cuts {desc.cuts}  ·  recordings {desc.recordings}  ·  {desc.hours:.3f} h"
        f"  ·  captioned {desc.with_caption}/{desc.cuts}",
        "  types " + ", ".join(f"{k} {v}" for k, v in sorted(desc.cut_types.items()))
        + "  ·  rates " + ", ".join(f"{k} Hz × {v}" for k, v in sorted(desc.sampling_rates.items())),
    ]
    if desc.quarantine:
        total = sum(desc.quarantine.values())
        lines.append(f"  quarantined {total}: " + ", ".join(f"{k} {v}" for k, v in desc.quarantine.most_common()))
    for name, values in desc.values.items():
        finite = values[np.isfinite(values)]
        stats = (
            f"n={finite.size}  min {finite.min():.4g}  median {np.median(finite):.4g}  "
            f"mean {finite.mean():.4g}  max {finite.max():.4g}" if finite.size else "n=0"
        )
        missing = values.size - finite.size
        lines.append("")
        lines.append(f"{_label(name)}  {stats}" + (f"  missing {missing}" if missing else ""))
        lines.extend(histogram_lines(values, bins))
    return "\n".join(lines)


def plot_description(desc: Description, out: str | os.PathLike, bins: int = 20) -> Path:
    """The histograms of `desc` as one PNG figure (written atomically)."""

    matplotlib.use("Agg")

    names = list(desc.values) or ["duration"]
    cols = min(3, len(names))
    rows = math.ceil(len(names) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 3.2 * rows), squeeze=False)
    for ax, name in zip(axes.flat, names):
        values = desc.values.get(name, np.array([]))
        finite = values[np.isfinite(values)]
        ax.hist(finite, bins=bins, color="#3b6ea8", edgecolor="white")
        ax.set_title(f"{_label(name)} (n={finite.size})", fontsize=10)
        ax.set_ylabel("cuts")
    for ax in list(axes.flat)[len(names):]:
        ax.axis("off")
    fig.suptitle(f"{Path(desc.path).name}: {desc.cuts} cuts, {desc.hours:.2f} h", fontsize=11)
    fig.tight_layout()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.stem}.tmp{out.suffix}")
    fig.savefig(tmp, dpi=110)
    plt.close(fig)
    os.replace(tmp, out)
    return out

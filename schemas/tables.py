"""Cuts -> the per-cut table that pandera validates and that `describe`/`filter` read.

One row per cut: its identity and timing (``id, recording_id, start, duration, ...``) and the
scalar fields of ``cut.custom`` (``caption, tags, loudness_lufs, clap_score, reward, ...``).
Lhotse arrays in ``custom`` (embeddings, latents) are not table columns; the table records
their presence as ``has_<name>``. Values are copied as they are, so wrong types in a manifest
reach the schema and are reported instead of being silently fixed here.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

import pandas as pd

IDENTITY_COLUMNS = (
    "id",
    "cut_type",
    "recording_id",
    "start",
    "duration",
    "sampling_rate",
    "num_channels",
    "source",
)


def _safe(get, default=None):
    try:
        return get()
    except Exception:  # a malformed cut: leave the field empty and let the schema say so
        return default


def _is_array_manifest(value: Any) -> bool:
    return isinstance(value, dict) and "storage_type" in value or type(value).__name__ in (
        "Array",
        "TemporalArray",
    )


def cut_to_row(cut: Any) -> dict[str, Any]:
    """One table row for a Lhotse cut (MonoCut or MultiCut)."""
    recording = getattr(cut, "recording", None)
    channels = getattr(cut, "channel", None)
    row = {
        "id": cut.id,
        "cut_type": type(cut).__name__,
        "recording_id": _safe(lambda: recording.id),
        "start": cut.start,
        "duration": cut.duration,
        "sampling_rate": _safe(lambda: recording.sampling_rate),
        "num_channels": len(channels) if isinstance(channels, list) else 1,
        "source": _safe(lambda: recording.sources[0].source),
    }
    for name, value in (cut.custom or {}).items():
        if name in row:
            continue
        if _is_array_manifest(value):
            row[f"has_{name}"] = True
        else:
            row[name] = value
    return row


def cuts_to_table(cuts: Iterable[Any]) -> pd.DataFrame:
    """The whole table of `cuts` (use :func:`iter_table_chunks` for big manifests)."""
    return pd.DataFrame.from_records([cut_to_row(c) for c in cuts])


def iter_table_chunks(cuts: Iterable[Any], chunk_size: int = 50_000) -> Iterator[pd.DataFrame]:
    """Tables of at most `chunk_size` rows, indexed by global row number."""
    rows: list[dict] = []
    offset = 0
    for cut in cuts:
        rows.append(cut_to_row(cut))
        if len(rows) == chunk_size:
            yield _frame(rows, offset)
            offset += len(rows)
            rows = []
    if rows:
        yield _frame(rows, offset)


def _frame(rows: list[dict], offset: int) -> pd.DataFrame:
    frame = pd.DataFrame.from_records(rows)
    frame.index = pd.RangeIndex(offset, offset + len(rows))
    return frame

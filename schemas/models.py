"""pandera models of the per-cut table (see `schemas.tables`) after each curation stage.

Each stage adds columns and the model of its output extends the model of its input. Models
coerce (so "44100.0" passes as an int but "abc" is reported per row) and are not strict
(users may carry their own extra fields). Columns a stage does not require but may meet are
``Optional``; when present they are checked.
"""

from __future__ import annotations

import math
from typing import Optional

import numpy as np
import pandas as pd
import pandera.pandas as pa
from pandera.typing import Series

from scoreaware.core.provenance import RESETS

MAX_SAMPLING_RATE = 768_000


def _finite(series: pd.Series) -> pd.Series:
    return pd.Series(np.isfinite(series.to_numpy(dtype=float)), index=series.index)


def _is_str_list(value) -> bool:
    return isinstance(value, list) and all(isinstance(item, str) for item in value)


def _non_blank(value) -> bool:
    return isinstance(value, str) and bool(value.strip())


class IngestedCuts(pa.DataFrameModel):
    """Whole-file cuts from `curate ingest`.

    Also declares, as optional, every column a later stage adds, so any manifest that carries
    e.g. ``clap_score`` has it range-checked whatever stage it is validated as.
    """

    id: Series[str] = pa.Field(unique=True, str_length={"min_value": 1})
    cut_type: Series[str] = pa.Field(isin=["MonoCut", "MultiCut"])
    recording_id: Series[str] = pa.Field(str_length={"min_value": 1})
    start: Series[float] = pa.Field(ge=0)
    duration: Series[float] = pa.Field(gt=0)
    sampling_rate: Series[int] = pa.Field(gt=0, le=MAX_SAMPLING_RATE)
    num_channels: Series[int] = pa.Field(ge=1, le=64)
    source: Series[str] = pa.Field(str_length={"min_value": 1})
    caption: Optional[Series[str]] = pa.Field(nullable=True)
    tags: Optional[Series[object]] = pa.Field(nullable=True)
    license: Optional[Series[str]] = pa.Field(nullable=True)
    # added by later stages; here optional and nullable (a mixture holds cuts with and without
    # them), in the stage's own schema required
    source_cut_id: Optional[Series[str]] = pa.Field(nullable=True, str_length={"min_value": 1})
    window_start: Optional[Series[float]] = pa.Field(nullable=True, ge=0)
    loudness_lufs: Optional[Series[float]] = pa.Field(nullable=True, le=20)
    clap_score: Optional[Series[float]] = pa.Field(nullable=True, ge=-1.0, le=1.0)
    reward: Optional[Series[float]] = pa.Field(nullable=True)
    caption_verbose: Optional[Series[str]] = pa.Field(nullable=True)
    combined_score: Optional[Series[float]] = pa.Field(nullable=True)
    selection_rank: Optional[Series[pd.Int64Dtype]] = pa.Field(nullable=True, ge=1)

    # pandera names a check after its method: these names appear in validation reports
    @pa.check("start", "duration", "window_start", "loudness_lufs", "reward", "combined_score")
    def finite(cls, series: pd.Series) -> pd.Series:
        return _finite(series)

    @pa.check("tags", element_wise=True)
    def list_of_strings(cls, value) -> bool:
        return _is_str_list(value)

    class Config:
        coerce = True
        strict = False


class SegmentedCuts(IngestedCuts):
    """Fixed windows from `curate segment`, with provenance and loudness."""

    source_cut_id: Series[str] = pa.Field(nullable=False, str_length={"min_value": 1})
    window_start: Series[float] = pa.Field(nullable=False, ge=0)
    loudness_lufs: Series[float] = pa.Field(nullable=False, le=20)


class ClapScoredCuts(IngestedCuts):
    """Cuts with a CLAP audio embedding and, when they have a caption, an audio-text CLAP
    score (cosine of L2-normalized embeddings). Cuts without a caption keep their embedding
    (the reward, FAD and REPA use it) and an empty score; `filter` decides about them."""

    clap_score: Optional[Series[float]] = pa.Field(nullable=True, ge=-1.0, le=1.0)
    has_clap_audio_emb: Series[bool] = pa.Field(nullable=False)


class RewardScoredCuts(IngestedCuts):
    """Cuts with a preference-reward score (unbounded, finite)."""

    reward: Series[float] = pa.Field(nullable=False)


class CaptionedCuts(IngestedCuts):
    """Cuts whose `caption` came out of the two-stage captioner."""

    caption: Series[str] = pa.Field(nullable=False)
    caption_verbose: Optional[Series[str]] = pa.Field(nullable=True)

    @pa.check("caption", element_wise=True)
    def non_blank(cls, value) -> bool:
        return _non_blank(value)


class SelectedCuts(IngestedCuts):
    """Cuts ranked by the combined (z-blended) score of `curate select`."""

    combined_score: Series[float] = pa.Field(nullable=False)
    selection_rank: Series[pd.Int64Dtype] = pa.Field(nullable=False, ge=1)


SCHEMAS: dict[str, type[pa.DataFrameModel]] = {
    "ingest": IngestedCuts,
    "segment": SegmentedCuts,
    "clap": ClapScoredCuts,
    "reward": RewardScoredCuts,
    "caption": CaptionedCuts,
    "select": SelectedCuts,
    "mixture": IngestedCuts,  # base cuts plus oversampled selected ones: later columns are partial
    "caption_audio": IngestedCuts,  # adds caption_verbose (optional: flagged cuts have none)
    "caption_rewrite": CaptionedCuts,
    "encode": IngestedCuts,  # adds arrays (latent, text tokens); see GUARANTEES
}

# When a manifest has no sidecar, the most specific schema whose marker column is present wins.
_MARKERS = [
    ("select", "selection_rank"),
    ("reward", "reward"),
    ("clap", "has_clap_audio_emb"),
    ("caption", "caption_verbose"),
    ("segment", "window_start"),
]


# Columns each stage guarantees in its output (non-null). A manifest made by a chain of
# stages must still carry what every earlier stage guaranteed: `schema_for_lineage`.
GUARANTEES: dict[str, dict[str, type]] = {
    "segment": {"source_cut_id": str, "window_start": float, "loudness_lufs": float},
    "clap": {"has_clap_audio_emb": bool},
    "reward": {"reward": float, "has_mert_emb": bool},
    "caption_rewrite": {"caption": str},
    "select": {"combined_score": float, "selection_rank": pd.Int64Dtype},
    "encode": {"has_latent": bool, "has_text_tokens": bool, "has_clap_text_emb": bool, "latent_frames": int},
}
def schema_for_lineage(lineage: list[str]) -> tuple[pa.DataFrameSchema, str]:
    """(schema, name) for a manifest made by `lineage` (stages in order, oldest first).

    The last stage's own model, with every earlier stage's guaranteed columns required too.
    """
    last = next((s for s in reversed(lineage) if s in SCHEMAS), "ingest")
    schema = SCHEMAS[last].to_schema()
    start = max((i for i, s in enumerate(lineage) if s in RESETS), default=-1)
    required: dict[str, type] = {}
    for stage in lineage[start + 1:]:
        required.update(GUARANTEES.get(stage, {}))
    for column, kind in required.items():
        if column in schema.columns:
            schema = schema.update_column(column, required=True, nullable=False)
        else:
            schema = schema.add_columns({column: pa.Column(kind, nullable=False, required=True, coerce=True)})
    name = SCHEMAS[last].__name__
    if len(lineage) > 1:
        name += f" (made by {' → '.join(lineage)})"
    return schema, name


def schema_for(stage: str) -> type[pa.DataFrameModel]:
    """The pandera model of a stage's output."""
    try:
        return SCHEMAS[stage]
    except KeyError:
        raise ValueError(f"no schema for stage {stage!r}; known: {', '.join(SCHEMAS)}") from None


def infer_stage(columns: set[str]) -> str:
    """Guess the stage of a table from its columns (used when no sidecar says)."""
    for stage, marker in _MARKERS:
        if marker in columns:
            return stage
    return "ingest"


def is_missing(value) -> bool:
    """None or NaN."""
    return value is None or (isinstance(value, float) and math.isnan(value))

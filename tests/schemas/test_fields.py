"""The field-name constants and the pandera models name the same columns."""

from __future__ import annotations

import subprocess
from pathlib import Path

from scoreaware.schemas import fields, models

# written by a stage but not a validated column of the per-cut table: arrays are stored as Lhotse
# array references, the filter's fields sit on rejected cuts only, prompt ids on generated clips,
# the caption's flag and crop are free-form notes
NOT_TABLE_COLUMNS = {fields.CLAP_AUDIO_EMB, fields.CLAP_TEXT_EMB, fields.MERT_EMB, fields.FILTER_RULE,
                     fields.FILTER_VALUE, fields.FILTER_THRESHOLD, fields.PROMPT_ID, fields.RELPATH,
                     fields.CAPTION_AUDIO_CROPPED, fields.CAPTION_FLAG}


def test_every_table_field_is_a_model_column():
    columns = set(models.IngestedCuts.to_schema().columns)
    for model in (models.SegmentedCuts, models.ClapScoredCuts, models.RewardScoredCuts, models.CaptionedCuts,
                  models.SelectedCuts):
        columns |= set(model.to_schema().columns)
    missing = set(fields.ALL.values()) - NOT_TABLE_COLUMNS - columns
    assert not missing, f"field constants no pandera model declares: {sorted(missing)}"


def test_library_code_names_the_scored_fields_by_constant():
    """The fields the issue found spelled out 42 times are named by constant in library code
    (the pandera models, which declare them, and docstrings aside)."""
    root = Path(__file__).resolve().parents[2]
    found = subprocess.run(["git", "grep", "-n", "-E", '"(clap_score|clap_audio_emb|clap_text_emb|mert_emb|'
                            'loudness_lufs|combined_score|selection_rank)"', "--", "curate", "train", "src"],
                           capture_output=True, text=True, cwd=root).stdout.splitlines()
    found = [line for line in found if ':metric = "' not in line]  # experiment TOML text in the demo
    assert not found, "\n".join(found)

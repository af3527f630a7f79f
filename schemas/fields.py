"""The names of the fields the stages write into a cut's ``custom``: one place, so a rename is
one edit and a typo is a NameError instead of a silently missing value.

The pandera models in `schemas.models` declare the same names as class attributes (their column
names); ``tests/schemas/test_fields.py`` checks that both agree.
"""

from __future__ import annotations

# ingest (from the metadata)
CAPTION = "caption"
TAGS = "tags"
LICENSE = "license"
RELPATH = "relpath"
# segment
SOURCE_CUT_ID = "source_cut_id"
WINDOW_START = "window_start"
LOUDNESS_LUFS = "loudness_lufs"
# score clap
CLAP_SCORE = "clap_score"
CLAP_AUDIO_EMB = "clap_audio_emb"
CLAP_TEXT_EMB = "clap_text_emb"
# score reward
REWARD = "reward"
MERT_EMB = "mert_emb"
# caption
CAPTION_VERBOSE = "caption_verbose"
CAPTION_FLAG = "caption_flag"
CAPTION_AUDIO_CROPPED = "caption_audio_cropped"
# filter (on rejected cuts)
FILTER_RULE = "filter_rule"
FILTER_VALUE = "filter_value"
FILTER_THRESHOLD = "filter_threshold"
# select
COMBINED_SCORE = "combined_score"
SELECTION_RANK = "selection_rank"
# generation and evaluation
PROMPT_ID = "prompt_id"

ALL = {name: value for name, value in dict(globals()).items() if name.isupper() and isinstance(value, str)}

"""Filter: drop the most misaligned segments (and ones that break simple rules), keeping reasons.

Rules, applied in this order (the first that fails names the rejection):

* ``no_caption``: the caption field is missing or blank (``require_caption``);
* ``duration``: outside ``[min_duration, max_duration]``;
* ``loudness``: ``loudness_lufs`` below ``min_lufs``;
* ``clap_score``: below the threshold — an absolute ``min_clap``, or the ``clap_percentile``-th
  percentile of the manifest's scores (default: drop the bottom 10 %).

The percentile comes from one streaming pass over the score column (a float per cut); the
rules are then applied lazily in a second pass. Rejected cuts keep everything and gain
``filter_rule``, ``filter_value`` and ``filter_threshold``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import numpy as np
from lhotse.cut import Cut
from lhotse.utils import fastcopy

STAGE = "filter"


@dataclass(frozen=True)
class FilterConfig:
    """Rules of the filter stage; None disables a rule."""

    clap_percentile: float | None = 10.0
    min_clap: float | None = None
    min_duration: float | None = None
    max_duration: float | None = None
    min_lufs: float | None = None
    require_caption: bool = True
    caption_field: str = "caption"

    def __post_init__(self) -> None:
        if self.clap_percentile is not None and self.min_clap is not None:
            raise ValueError("give either a CLAP percentile or an absolute minimum CLAP score, not both")
        if self.clap_percentile is not None and not 0 <= self.clap_percentile < 100:
            raise ValueError(f"clap_percentile must be in [0, 100), got {self.clap_percentile}")


@dataclass(frozen=True)
class Thresholds:
    """What the rules compare against, resolved for one manifest."""

    min_clap: float | None
    clap_percentile: float | None
    scored_cuts: int


def resolve_thresholds(cuts: Iterable[Cut], config: FilterConfig) -> Thresholds:
    """Pass 1: the CLAP threshold (the percentile of the scores present, 'linear' interpolation)."""
    if config.clap_percentile is None:
        return Thresholds(config.min_clap, None, 0)
    count = 0
    values = []
    for cut in cuts:
        count += 1
        value = (cut.custom or {}).get("clap_score")
        if value is not None and math.isfinite(float(value)):
            values.append(float(value))
    scores = np.asarray(values, dtype=float)
    if count == 0:
        return Thresholds(None, config.clap_percentile, 0)  # nothing to filter
    if scores.size == 0:
        raise ValueError("no cut has a clap_score: run `curate score clap` first, or pass --clap-percentile 0")
    return Thresholds(float(np.percentile(scores, config.clap_percentile)), config.clap_percentile, int(scores.size))


def check(cut: Cut, config: FilterConfig, thresholds: Thresholds) -> tuple[str, float | str | None, float | None]:
    """The first failing rule as (rule, value, threshold), or ('', None, None) when the cut passes."""
    custom = cut.custom or {}
    if config.require_caption:
        caption = custom.get(config.caption_field)
        if not isinstance(caption, str) or not caption.strip():
            return "no_caption", None, None
    if config.min_duration is not None and cut.duration < config.min_duration:
        return "duration", cut.duration, config.min_duration
    if config.max_duration is not None and cut.duration > config.max_duration:
        return "duration", cut.duration, config.max_duration
    if config.min_lufs is not None:
        lufs = _number(custom.get("loudness_lufs"))
        if lufs is None or not lufs >= config.min_lufs:
            return "loudness", lufs, config.min_lufs
    if thresholds.min_clap is not None:
        score = _number(custom.get("clap_score"))
        if score is None or math.isnan(score) or score < thresholds.min_clap:
            return "clap_score", score, thresholds.min_clap
    return "", None, None


def _number(value) -> float | None:
    """A manifest value as a float (validated manifests may hold numbers as numeric strings)."""
    return None if value is None else float(value)


def apply_filter(cuts: Iterable[Cut], config: FilterConfig, thresholds: Thresholds,
                 skip_ids: Iterable[str] = ()) -> Iterator[tuple[bool, Cut]]:
    """Pass 2, lazy: (kept?, cut) in input order; rejected cuts carry the rule and value."""
    skip = set(skip_ids)
    for cut in cuts:
        if cut.id in skip:
            continue
        rule, value, threshold = check(cut, config, thresholds)
        if not rule:
            yield True, cut
        else:
            custom = dict(cut.custom or {})
            custom.update(filter_rule=rule, filter_value=value, filter_threshold=threshold)
            yield False, fastcopy(cut, custom=custom)

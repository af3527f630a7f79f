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
from pathlib import Path

import numpy as np
from lhotse.cut import Cut
from lhotse.utils import fastcopy

from scoreaware.core.errors import StageError
from scoreaware.core.files import count_lines
from scoreaware.core.manifests import read_cuts
from scoreaware.core.output import sibling
from scoreaware.core.provenance import describe_input
from scoreaware.core.stage import (
    StagePlan,
    StageResult,
    done_line,
    output_options,
    recorded_options,
    rejected_line,
    run_stage,
)
from scoreaware.schemas.fields import CLAP_SCORE, FILTER_RULE, LOUDNESS_LUFS
from scoreaware.schemas.validation import check_input, validate_manifest

STAGE = "filter"


@dataclass(frozen=True)
class FilterConfig:
    """Rules of the filter stage (`curate filter`'s options, one for one); None disables a rule."""

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
        value = (cut.custom or {}).get(CLAP_SCORE)
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
        lufs = _number(custom.get(LOUDNESS_LUFS))
        if lufs is None or not lufs >= config.min_lufs:
            return "loudness", lufs, config.min_lufs
    if thresholds.min_clap is not None:
        score = _number(custom.get(CLAP_SCORE))
        if score is None or math.isnan(score) or score < thresholds.min_clap:
            return CLAP_SCORE, score, thresholds.min_clap
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


def run_filter(manifest: Path, output: Path, filter_config: FilterConfig = FilterConfig(), *,
               rejected: Path | None = None, resume: bool = False, overwrite: bool = False) -> StageResult:
    """Keep the cuts of `manifest` that pass every rule of `filter_config`; rejected cuts keep
    the rule and value (in `rejected`, default OUTPUT's .rejected sibling). The CLAP percentile
    threshold comes from one streaming pass over the whole manifest."""
    c = filter_config
    source = describe_input(manifest)
    config = dict(input_sha256=source["sha256"], **output_options(c))
    state: dict = {}

    def check() -> None:
        check_input(manifest)
        try:
            state["thresholds"] = resolve_thresholds(read_cuts(manifest), filter_config)
        except ValueError as exc:
            raise StageError(str(exc)) from None

    def drive_filter(out, bar):
        for kept, cut in apply_filter(read_cuts(manifest), filter_config, state["thresholds"], skip_ids=out.done_ids):
            if kept:
                out.write(cut)
            else:
                out.write_to("rejected", cut, reason=cut.custom[FILTER_RULE])
            bar.update(1)

    def finalize(out, report):
        return dict(options=dict(manifest=str(manifest), **recorded_options(c),
                                 resolved_min_clap=state["thresholds"].min_clap, output=str(output)), inputs=[source])

    def summary(out, report, seconds):
        thresholds = state["thresholds"]
        lines = [done_line(out) + f", rejected {out.summary.quarantined}"
                 + ("; the input is empty, so is the output" if thresholds.scored_cuts == 0 and not out.summary.kept
                    and not out.summary.quarantined else ""),
                 rejected_line(out.summary.rejected).replace("quarantined", "rejected by rule")]
        if thresholds.min_clap is not None:
            how = f"p{thresholds.clap_percentile:g} of {thresholds.scored_cuts} scores" if thresholds.clap_percentile \
                is not None else "absolute"
            lines.append(f"CLAP threshold {thresholds.min_clap:.4f} ({how})")
        return lines + [f"took {seconds:.1f} s"]

    return run_stage(StagePlan(
        STAGE, Path(output), config, drive_filter, summary, finalize, check=check,
        total=lambda: count_lines(manifest), input_manifest=Path(manifest), validator=validate_manifest,
        output_options=dict(counted_streams={"rejected": FILTER_RULE},
                            stream_paths={"rejected": rejected or sibling(output, "rejected")})),
        resume=resume, overwrite=overwrite)

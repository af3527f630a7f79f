"""Segment: cuts -> fixed windows (default 10 s), each with its loudness and provenance.

Each source cut is decoded once; the windows are Lhotse truncations of it (no audio copied),
with ids ``{recording}_{start_ms}`` and, in ``custom``, everything the source carried
(caption, tags, licence, ...) plus ``source_cut_id``, ``window_start`` (seconds into the
source cut) and ``loudness_lufs`` (BS.1770 integrated loudness of the window). Windows quieter
than ``min_lufs`` are rejected as near-silent; a source too short for any window is rejected
as too short. Padding is left to consumers (scorers repeat-pad, training masks), so every
output cut stays a plain MonoCut/MultiCut.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from lhotse.cut import Cut
from lhotse.utils import fastcopy

from scoreaware.core.errors import StageError
from scoreaware.core.files import count_lines
from scoreaware.core.jobs import ExecutorOptions, StageJob
from scoreaware.core.manifests import read_cuts
from scoreaware.core.output import Rejection
from scoreaware.core.parallel import DEFAULT_WORKERS, ordered_map
from scoreaware.core.provenance import describe_input
from scoreaware.core.stage import (
    StagePlan,
    StageResult,
    done_line,
    drive,
    option,
    output_options,
    ray_line,
    recorded_options,
    rejected_line,
    run_stage,
)
from scoreaware.curate.audio import load_cut_audio
from scoreaware.curate.loudness import window_loudness
from scoreaware.curate.windows import Window, plan_windows, window_id
from scoreaware.schemas.validation import check_input, validate_manifest

STAGE = "segment"


@dataclass(frozen=True)
class SegmentConfig:
    """Options of the segment stage (`curate segment`'s options, one for one)."""

    window: float = 10.0
    hop: float | None = None  # None: the window (no overlap)
    min_duration: float | None = None  # None: the window (no short tail)
    min_lufs: float = -45.0
    workers: int = option(DEFAULT_WORKERS, changes_output=False)  # decoding threads

    def resolved(self) -> SegmentConfig:
        """The defaults made explicit, so `--hop 10` resumes a run started without it."""
        return dataclasses.replace(self, hop=self.hop or self.window,
                                   min_duration=self.window if self.min_duration is None else self.min_duration)

    def plan(self, cut: Cut) -> list[Window]:
        return plan_windows(cut.duration, self.window, self.hop, self.min_duration)

    def output_ids(self, cut: Cut) -> list[str]:
        """The ids `cut` becomes: its windows', or its own when it is too short for one."""
        return [window_id(cut.recording_id, cut.start, w) for w in self.plan(cut)] or [cut.id]


def window_cut(cut: Cut, w: Window, loudness: float) -> Cut:
    """The window `w` of `cut` as a new cut with provenance fields."""
    piece = cut.truncate(offset=w.start, duration=w.duration, keep_excessive_supervisions=True, preserve_id=True)
    custom = dict(cut.custom or {})
    custom.update(
        source_cut_id=cut.id,
        window_start=w.start,
        loudness_lufs=round(loudness, 3),
    )
    return fastcopy(piece, id=window_id(cut.recording_id, cut.start, w), custom=custom)


def segment_cut(cut: Cut, config: SegmentConfig, audio=None) -> list[Cut | Rejection]:
    """Windows (or rejections) of one source cut, in time order."""
    windows = config.plan(cut)
    if not windows:
        return [Rejection(cut.id, STAGE, "too_short",
                          f"{cut.duration:.2f} s yields no window of ≥ {config.min_duration or config.window} s",
                          item=cut.to_dict())]
    try:
        samples = load_cut_audio(cut) if audio is None else audio  # (C, T)
    except Exception as exc:  # the file changed or vanished since ingest
        return [Rejection(cut.id, STAGE, "unreadable", f"{type(exc).__name__}: {exc}"[:300], item=cut.to_dict())]
    sr = cut.sampling_rate
    spans = [(round(w.start * sr), min(round((w.start + w.duration) * sr), samples.shape[-1])) for w in windows]
    outcomes: list[Cut | Rejection] = []
    for w, lufs in zip(windows, window_loudness(samples, sr, spans)):
        if not lufs >= config.min_lufs:  # also catches -inf (digital silence)
            ident = window_id(cut.recording_id, cut.start, w)
            outcomes.append(Rejection(ident, STAGE, "near_silent", f"{lufs:.1f} LUFS < {config.min_lufs:g} LUFS",
                                      item=window_cut(cut, w, max(lufs, -999.0)).to_dict()))
        else:
            outcomes.append(window_cut(cut, w, lufs))
    return outcomes


def guarded_segment_cut(cut: Cut, config: SegmentConfig) -> list[Cut | Rejection]:
    """`segment_cut`, with any failure of one source quarantined instead of ending the stage
    (a resumed run would otherwise meet the same source and fail again, forever)."""
    try:
        return segment_cut(cut, config)
    except Exception as exc:
        return [Rejection(cut.id, STAGE, "segment_failed", f"{type(exc).__name__}: {exc}"[:300], item=cut.to_dict())]


def segment(
    cuts: Iterable[Cut],
    config: SegmentConfig = SegmentConfig(),
    *,
    workers: int = 2,
    is_done: Callable[[str], bool] = lambda _: False,
    on_source: Callable[[Cut], None] | None = None,
) -> Iterator[Cut | Rejection]:
    """Windows and rejections of every cut, in input order; memory is bounded per source.

    :param cuts: source cuts (typically `ingest` output); read lazily.
    :param config: window length, hop, shortest tail and near-silence threshold.
    :param workers: threads decoding and measuring sources concurrently.
    :param is_done: ids an interrupted run already wrote; sources whose every window is done
        are not decoded again.
    :param on_source: called once per source cut as it completes (progress bars).
    """

    def todo(cut: Cut) -> bool:
        if all(is_done(i) for i in config.output_ids(cut)):
            if on_source:
                on_source(cut)
            return False
        return True

    pending = (cut for cut in cuts if todo(cut))
    for cut, outcomes in ordered_map(lambda c: guarded_segment_cut(c, config), pending, workers=workers):
        yield from outcomes
        if on_source:
            on_source(cut)


def segment_job(config: SegmentConfig, workers: int) -> StageJob:
    """`segment` as a `StageJob` for either executor (nothing to load; `workers` decoding threads)."""
    return StageJob("segment", _no_models, functools.partial(_segment_cuts, config=config, workers=workers),
                    output_ids=config.output_ids)


def _no_models() -> None:
    return None


def _segment_cuts(_: None, cuts: Iterable[Cut], skip_ids: frozenset[str], *, config: SegmentConfig,
                  workers: int) -> Iterator[Cut | Rejection]:
    return segment(cuts, config, workers=workers, is_done=skip_ids.__contains__)


def run_segment(manifest: Path, output: Path, config: SegmentConfig = SegmentConfig(), *,
                executor: ExecutorOptions | None = None, resume: bool = False,
                overwrite: bool = False) -> StageResult:
    """Cut every cut of `manifest` into fixed windows with loudness and provenance, into `output`."""
    executor = executor or ExecutorOptions()
    if config.min_duration is not None and config.min_duration > config.window:
        raise StageError(f"--min-duration {config.min_duration} exceeds --window {config.window}")
    source = describe_input(manifest)
    counts: dict[str, int] = {}

    def drive_windows(out, bar):
        counts["sources"] = count_lines(manifest)
        workers = max(1, int(executor.cpus_per_actor)) if executor.on_ray else config.workers
        return drive(segment_job(config, workers), manifest, out, executor, bar)

    def summary(out, report, seconds):
        sources = counts["sources"]
        rate = out.summary.this_run["kept"] * config.window / seconds if seconds else 0.0
        return [f"sources {sources}  →  windows " + done_line(out) + f" ({out.summary.hours:.3f} h)"
                + ("; the input is empty, so is the output" if sources == 0 else ""),
                rejected_line(out.summary.rejected), f"took {seconds:.1f} s ({rate:.0f}× real time)",
                *[line for line in [ray_line(report)] if line]]

    def finalize(out, report):
        out.summary.extra.update(sources=counts["sources"])
        return dict(options=dict(manifest=str(manifest), output=str(output), **recorded_options(config.resolved()),
                                 executor=executor.kind), inputs=[source])

    return run_stage(StagePlan(
        STAGE, Path(output), dict(input_sha256=source["sha256"], **output_options(config.resolved())),
        drive_windows, summary, finalize, check=lambda: check_input(manifest),
        total=lambda: sum(len(config.output_ids(cut)) for cut in read_cuts(manifest)), unit="window",
        input_manifest=Path(manifest), validator=validate_manifest), resume=resume, overwrite=overwrite)

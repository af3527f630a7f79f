"""`run_segment`: the segment stage end to end."""

from __future__ import annotations

from pathlib import Path

from scoreaware.core.errors import StageError
from scoreaware.core.files import count_lines
from scoreaware.core.jobs import ExecutorOptions
from scoreaware.core.manifests import read_cuts
from scoreaware.core.provenance import describe_input
from scoreaware.core.stage import StagePlan, StageResult, done_line, drive, ray_line, rejected_line, run_stage
from scoreaware.curate.stages.segment import SegmentConfig, segment_job
from scoreaware.schemas.validation import check_input, validate_manifest


def run_segment(manifest: Path, output: Path, *, window: float = 10.0, hop: float | None = None,
                min_duration: float | None = None, min_lufs: float = -45.0, workers: int = 2,
                executor: ExecutorOptions | None = None, resume: bool = False,
                overwrite: bool = False) -> StageResult:
    """Cut every cut of `manifest` into fixed windows with loudness and provenance, into `output`."""
    executor = executor or ExecutorOptions()
    if min_duration is not None and min_duration > window:
        raise StageError(f"--min-duration {min_duration} exceeds --window {window}")
    source = describe_input(manifest)
    config = dict(input_sha256=source["sha256"], window=window, hop=hop or window,
                  min_duration=min_duration if min_duration is not None else window, min_lufs=min_lufs)
    segment_config = SegmentConfig(window=window, hop=hop, min_duration=min_duration, min_lufs=min_lufs)
    counts: dict[str, int] = {}

    def drive_windows(out, bar):
        counts["sources"] = count_lines(manifest)
        job = segment_job(segment_config, max(1, int(executor.cpus_per_actor)) if executor.on_ray else workers)
        return drive(job, manifest, out, executor, bar)

    def summary(out, report, seconds):
        sources = counts["sources"]
        rate = out.summary.this_run["kept"] * window / seconds if seconds else 0.0
        return [f"sources {sources}  →  windows " + done_line(out) + f" ({out.summary.hours:.3f} h)"
                + ("; the input is empty, so is the output" if sources == 0 else ""),
                rejected_line(out.summary.rejected), f"took {seconds:.1f} s ({rate:.0f}× real time)",
                *[line for line in [ray_line(report)] if line]]

    def finalize(out, report):
        out.summary.extra.update(sources=counts["sources"])
        return dict(options=dict(manifest=str(manifest), output=str(output), workers=workers,
                                 executor=executor.kind), inputs=[source])

    return run_stage(StagePlan(
        "segment", Path(output), config, drive_windows, summary, finalize, check=lambda: check_input(manifest),
        total=lambda: sum(len(segment_config.output_ids(cut)) for cut in read_cuts(manifest)), unit="window",
        input_manifest=Path(manifest), validator=validate_manifest), resume=resume, overwrite=overwrite)

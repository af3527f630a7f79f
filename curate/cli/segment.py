"""`scoreaware curate segment`."""

from __future__ import annotations

from pathlib import Path

import click

from curate.cli.common import (
    Timer,
    done_line,
    drive,
    executor_options,
    manifest_path,
    output_options,
    prepare_output,
    print_summary,
    progress,
    ray_line,
    rejected_line,
    stage_command,
    workers_option,
)


@click.command(context_settings=dict(show_default=True))
@click.argument("manifest", type=manifest_path())
@click.option("--window", type=click.FloatRange(0.01), default=10.0, help="Window length in seconds.")
@click.option("--hop", type=click.FloatRange(0.01), default=None,
              help="Seconds between window starts [default: window].")
@click.option("--min-duration", type=click.FloatRange(0.0), default=None,
              help="Shortest tail window kept; shorter tails are dropped [default: window].")
@click.option("--min-lufs", type=float, default=-45.0,
              help="Windows quieter than this integrated loudness are quarantined as near-silent.")
@output_options("segment.jsonl.gz")
@workers_option
@executor_options
@stage_command
def segment(manifest: Path, window: float, hop: float | None, min_duration: float | None, min_lufs: float,
            output: Path, resume: bool, overwrite: bool, workers: int, executor=None) -> None:
    """Cut every cut of MANIFEST into fixed windows with loudness and provenance.

    Window ids are {recording}_{start_ms}. Captions and tags are carried to every window.
    Near-silent windows and sources too short for a window go to the quarantine manifest.
    """
    from curate.executors import ExecutorOptions
    from curate.io import count_lines, describe_input
    from curate.manifests import check_input, read_cuts
    from curate.stages.segment import SegmentConfig, segment_job

    executor = executor or ExecutorOptions()

    if min_duration is not None and min_duration > window:
        raise click.BadParameter(f"{min_duration} exceeds --window {window}", param_hint="--min-duration")
    source = describe_input(manifest)
    config = dict(input_sha256=source["sha256"], window=window, hop=hop or window,
                  min_duration=min_duration if min_duration is not None else window, min_lufs=min_lufs)
    out = prepare_output(output, "segment", resume, overwrite, config=config, input_manifest=manifest)
    if out is None:
        return
    timer = Timer()
    check_input(manifest)
    segment_config = SegmentConfig(window=window, hop=hop, min_duration=min_duration, min_lufs=min_lufs)
    sources = count_lines(manifest)
    windows = sum(len(segment_config.output_ids(cut)) for cut in read_cuts(manifest))  # the bar's total
    with out, progress(windows, "segment", "window") as bar:
        bar.update(out.resumed_items)
        job = segment_job(segment_config, max(1, int(executor.cpus_per_actor)) if executor.on_ray else workers)
        report = drive(job, manifest, out, executor, bar)
    out.summary.extra.update(sources=sources)
    provenance = out.finalize(options=dict(manifest=str(manifest), output=str(output), workers=workers,
                                           executor=executor.kind), inputs=[source])
    rate = out.summary.this_run["kept"] * window / timer.seconds if timer.seconds else 0.0
    print_summary("segment", [
        f"sources {sources}  →  windows " + done_line(out) + f" ({out.summary.hours:.3f} h)"
        + ("; the input is empty, so is the output" if sources == 0 else ""),
        rejected_line(out.summary.rejected),
        f"took {timer.seconds:.1f} s ({rate:.0f}× real time)",
        *[line for line in [ray_line(report)] if line],
    ], provenance["outputs"])

"""`scoreaware curate segment`."""

from __future__ import annotations

from pathlib import Path

import click

from scoreaware.cli.options import (
    executor_options,
    manifest_path,
    output_options,
    print_result,
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
def segment(manifest: Path, output: Path, resume: bool, overwrite: bool, executor=None, **options) -> None:
    """Cut every cut of MANIFEST into fixed windows with loudness and provenance.

    Window ids are {recording}_{start_ms}. Captions and tags are carried to every window.
    Near-silent windows and sources too short for a window go to the quarantine manifest.
    """
    from scoreaware.curate.stages.segment import SegmentConfig, run_segment

    config = SegmentConfig(**options)  # the options above are SegmentConfig's fields, one for one
    if config.min_duration is not None and config.min_duration > config.window:
        raise click.BadParameter(f"{config.min_duration} exceeds --window {config.window}",
                                 param_hint="--min-duration")
    print_result(run_segment(manifest, output, config, executor=executor, resume=resume, overwrite=overwrite))

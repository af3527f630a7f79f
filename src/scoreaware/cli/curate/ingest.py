"""`scoreaware curate ingest`."""

from __future__ import annotations

from pathlib import Path

import click

from scoreaware.cli.options import (
    output_options,
    print_result,
    workers_option,
)


@click.command(context_settings=dict(show_default=True))
@click.argument("audio_dir", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("-m", "--metadata", "metadata_files", multiple=True,
              type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Metadata file (MTG-Jamendo TSV, challenge caption JSON, Song Describer / MusicCaps / AudioCaps "
                   "CSV, JSONL, CSV or TSV); repeatable.")
@click.option("--metadata-encoding", default=None,
              help="Text encoding of the metadata files [default: UTF-8, or UTF-16 with a BOM].")
@click.option("--id-from", type=click.Choice(["stem", "path"]), default="stem",
              help="Recording ids from the file stem (00/1085700.mp3 -> 1085700) or the relative path.")
@output_options("ingest.jsonl.gz")
@workers_option
def ingest(audio_dir: Path, output: Path, resume: bool, overwrite: bool, **options) -> None:
    """Build recordings, supervisions and cuts from AUDIO_DIR and its metadata.

    Every file under AUDIO_DIR is decoded once. Files that are empty, truncated, corrupt or not
    audio, and broken or looping symlinks, go to the quarantine manifest with the reason; the
    run goes on. Durations and sample rates come from the audio. Writes OUTPUT plus
    .recordings, .supervisions and .quarantine siblings and a .provenance.json sidecar. When
    metadata is given but matches no audio file at all, nothing is written and examples of
    both sides are shown.
    """
    from scoreaware.curate.stages.ingest import IngestConfig, run_ingest

    print_result(run_ingest(audio_dir, output, IngestConfig(**options), resume=resume, overwrite=overwrite))

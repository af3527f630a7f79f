"""`scoreaware curate ingest`."""

from __future__ import annotations

from pathlib import Path

import click

from curate.cli.common import (
    Timer,
    output_options,
    prepare_output,
    print_summary,
    progress,
    rejected_line,
    stage_command,
    workers_option,
)


@click.command(context_settings=dict(show_default=True))
@click.argument("audio_dir", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("-m", "--metadata", "metadata_files", multiple=True,
              type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Metadata file (MTG-Jamendo TSV, challenge caption JSON, JSONL or CSV); repeatable.")
@click.option("--id-from", type=click.Choice(["stem", "path"]), default="stem",
              help="Recording ids from the file stem (00/1085700.mp3 -> 1085700) or the relative path.")
@output_options("ingest.jsonl.gz")
@workers_option
@stage_command
def ingest(audio_dir: Path, metadata_files: tuple[Path, ...], id_from: str, output: Path,
           resume: bool, overwrite: bool, workers: int) -> None:
    """Build recordings, supervisions and cuts from AUDIO_DIR and its metadata.

    Every file under AUDIO_DIR is decoded once. Files that are empty, truncated, corrupt or not
    audio go to the quarantine manifest with the reason; the run goes on. Durations and sample
    rates come from the audio. Writes OUTPUT plus .recordings, .supervisions and .quarantine
    siblings and a .provenance.json sidecar.
    """
    from curate.io import describe_input
    from curate.metadata import MetadataIndex
    from curate.stages.ingest import IngestedTrack, scan_audio_dir
    from curate.stages.ingest import ingest as run_ingest

    out = prepare_output(output, "ingest", resume, overwrite, streams=("recordings", "supervisions"))
    if out is None:
        return
    timer = Timer()
    index = MetadataIndex(metadata_files)
    files = scan_audio_dir(audio_dir, exclude=metadata_files)
    hours = 0.0
    without_meta = 0
    with out, progress(len(files), "ingest", "file") as bar:
        for item in run_ingest(audio_dir, index, id_from=id_from, workers=workers,
                               is_done=out.is_done, exclude=metadata_files):
            if isinstance(item, IngestedTrack):
                out.write_to("recordings", item.recording)
                out.write_to("supervisions", item.supervision)
                out.write(item.cut)
                hours += item.cut.duration / 3600
                without_meta += "caption" not in (item.cut.custom or {}) and "tags" not in (item.cut.custom or {})
            else:
                out.reject(item)
            bar.update(1)
        bar.update(len(files) - bar.n)
    unmatched = index.unmatched()
    out.summary.extra.update(files=len(files), hours_this_run=round(hours, 4),
                             metadata_records=len(index.records), metadata_without_audio=len(unmatched),
                             tracks_without_metadata=without_meta)
    inputs = [{"path": str(audio_dir), "files": len(files),
               "listing_sha256": _listing_digest(audio_dir, files)}]
    inputs += [describe_input(p) for p in metadata_files]
    provenance = out.finalize(options=dict(audio_dir=str(audio_dir), metadata=[str(p) for p in metadata_files],
                                           id_from=id_from, output=str(output), workers=workers),
                              inputs=inputs)
    lines = [
        f"files {len(files)}  →  kept {out.summary.kept} ({hours:.3f} h this run)"
        + (f", {out.resumed_items} already done before --resume" if out.resumed_items else ""),
        rejected_line(out.summary.rejected),
        f"metadata: {len(index.records)} records from {len(metadata_files)} files; "
        f"{len(unmatched)} without audio; {without_meta} tracks without metadata",
        f"took {timer.seconds:.1f} s",
    ]
    if unmatched:
        lines.append("metadata without audio (first 5): " + ", ".join(r.path or r.id or "?" for r in unmatched[:5]))
    print_summary("ingest", lines, provenance["outputs"])


def _listing_digest(root: Path, files: list[Path]) -> str:
    """sha256 over (relative path, size) of the audio files: changes when the folder does."""
    import hashlib

    digest = hashlib.sha256()
    for path in files:
        digest.update(f"{path.relative_to(root).as_posix()}\t{path.stat().st_size}\n".encode())
    return digest.hexdigest()

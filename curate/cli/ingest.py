"""`scoreaware curate ingest`."""

from __future__ import annotations

from pathlib import Path

import click

from curate.cli.common import (
    Timer,
    done_line,
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
              help="Metadata file (MTG-Jamendo TSV, challenge caption JSON, Song Describer / MusicCaps / AudioCaps "
                   "CSV, JSONL, CSV or TSV); repeatable.")
@click.option("--metadata-encoding", default=None,
              help="Text encoding of the metadata files [default: UTF-8, or UTF-16 with a BOM].")
@click.option("--id-from", type=click.Choice(["stem", "path"]), default="stem",
              help="Recording ids from the file stem (00/1085700.mp3 -> 1085700) or the relative path.")
@output_options("ingest.jsonl.gz")
@workers_option
@stage_command
def ingest(audio_dir: Path, metadata_files: tuple[Path, ...], metadata_encoding: str | None, id_from: str,
           output: Path, resume: bool, overwrite: bool, workers: int) -> None:
    """Build recordings, supervisions and cuts from AUDIO_DIR and its metadata.

    Every file under AUDIO_DIR is decoded once. Files that are empty, truncated, corrupt or not
    audio, and broken or looping symlinks, go to the quarantine manifest with the reason; the
    run goes on. Durations and sample rates come from the audio. Writes OUTPUT plus
    .recordings, .supervisions and .quarantine siblings and a .provenance.json sidecar. When
    metadata is given but matches no audio file at all, nothing is written and examples of
    both sides are shown.
    """
    from curate.io import StageError, describe_input
    from curate.metadata import MetadataIndex
    from curate.stages.ingest import IngestedTrack, plan_ingest
    from curate.stages.ingest import ingest as run_ingest

    inputs = [describe_input(p) for p in metadata_files]
    config = dict(audio_dir=str(audio_dir.resolve()), id_from=id_from, metadata_encoding=metadata_encoding,
                  metadata=[{"name": p.name, "sha256": i["sha256"]} for p, i in zip(metadata_files, inputs)])
    out = prepare_output(output, "ingest", resume, overwrite, streams=("recordings", "supervisions"), config=config)
    if out is None:
        return
    timer = Timer()
    index = MetadataIndex(metadata_files, encoding=metadata_encoding)
    plan = plan_ingest(audio_dir, index, id_from=id_from, exclude=metadata_files)
    if metadata_files and plan.jobs and plan.matched_files == 0:
        audio = ", ".join(relpath for _, relpath, _, _ in plan.jobs[:3])
        records = ", ".join(r.path or r.id or "?" for r in index.records[:3]) or "(no records)"
        raise StageError(f"no audio file matches any metadata record ({len(plan.jobs)} files, "
                         f"{len(index.records)} records).\n  audio files: {audio}\n  metadata paths/ids: {records}\n"
                         "Records match by relative path (also without extra suffixes such as .2min or .low), "
                         "then by id = file stem; check the folder you passed or use --id-from path")
    total = len(plan.jobs) + len(plan.problems)
    with out, progress(total, "ingest", "file") as bar:
        for item in run_ingest(plan, workers=workers, is_done=out.is_done):
            if isinstance(item, IngestedTrack):
                out.write_to("recordings", item.recording)
                out.write_to("supervisions", item.supervision)
                out.write(item.cut)
            else:
                out.reject(item)
            bar.update(1)
        bar.update(total - bar.n)
    unmatched = index.unmatched()
    out.summary.extra.update(files=total, metadata_records=len(index.records),
                             metadata_without_audio=len(unmatched), audio_without_metadata=len(plan.unmatched_files))
    inputs = [{"path": str(audio_dir), "files": total,
               "listing_sha256": _listing_digest(audio_dir, [job[0] for job in plan.jobs])}, *inputs]
    provenance = out.finalize(options=dict(output=str(output), workers=workers), inputs=inputs,
                              tallies={"tracks_without_metadata": _no_metadata})
    lines = [
        f"files {total}  →  " + done_line(out) + f" ({out.summary.hours:.3f} h)",
        rejected_line(out.summary.rejected),
        f"metadata: {len(index.records)} records from {len(metadata_files)} files; "
        f"{len(unmatched)} without audio; {len(plan.unmatched_files)} audio files without metadata",
        f"took {timer.seconds:.1f} s",
    ]
    lines += [f"note: {note}" for note in index.notes]
    if unmatched:
        lines.append("metadata without audio (first 5): " + ", ".join(r.path or r.id or "?" for r in unmatched[:5]))
    if plan.unmatched_files and metadata_files:
        lines.append("audio without metadata (first 5): " + ", ".join(plan.unmatched_files[:5]))
    print_summary("ingest", lines, provenance["outputs"])


def _no_metadata(cut: dict) -> bool:
    custom = cut.get("custom") or {}
    return "caption" not in custom and "tags" not in custom


def _listing_digest(root: Path, files: list[Path]) -> str:
    """sha256 over (relative path, size) of the audio files: changes when the folder does."""
    import hashlib

    digest = hashlib.sha256()
    for path in files:
        digest.update(f"{path.relative_to(root).as_posix()}\t{path.stat().st_size}\n".encode())
    return digest.hexdigest()

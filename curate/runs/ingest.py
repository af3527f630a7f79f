"""`run_ingest`: recordings, supervisions and cuts from an audio folder and its metadata."""

from __future__ import annotations

import hashlib
from pathlib import Path

from scoreaware.core.errors import StageError
from scoreaware.core.provenance import describe_input
from scoreaware.core.stage import StagePlan, StageResult, done_line, rejected_line, run_stage
from scoreaware.curate.metadata import MetadataIndex
from scoreaware.curate.stages.ingest import IngestedTrack, ingest, plan_ingest
from scoreaware.schemas.validation import validate_manifest


def run_ingest(audio_dir: Path, output: Path, *, metadata_files: tuple[Path, ...] = (),
               metadata_encoding: str | None = None, id_from: str = "stem", workers: int = 2, resume: bool = False,
               overwrite: bool = False) -> StageResult:
    """Build recordings, supervisions and cuts from `audio_dir` and its metadata into `output`.

    Undecodable files go to the quarantine manifest with the reason. When metadata is given but
    matches no audio file at all, nothing is written and examples of both sides are shown.
    """
    metadata_files = tuple(Path(p) for p in metadata_files)
    inputs = [describe_input(p) for p in metadata_files]
    config = dict(audio_dir=str(Path(audio_dir).resolve()), id_from=id_from, metadata_encoding=metadata_encoding,
                  metadata=[{"name": p.name, "sha256": i["sha256"]} for p, i in zip(metadata_files, inputs)])
    state: dict = {}

    def check() -> None:
        index = MetadataIndex(metadata_files, encoding=metadata_encoding)
        plan = plan_ingest(audio_dir, index, id_from=id_from, exclude=metadata_files)
        if metadata_files and plan.jobs and plan.matched_files == 0:
            audio = ", ".join(relpath for _, relpath, _, _ in plan.jobs[:3])
            records = ", ".join(r.path or r.id or "?" for r in index.records[:3]) or "(no records)"
            raise StageError(f"no audio file matches any metadata record ({len(plan.jobs)} files, "
                             f"{len(index.records)} records).\n  audio files: {audio}\n  metadata paths/ids: {records}"
                             "\nRecords match by relative path (also without extra suffixes such as .2min or .low), "
                             "then by id = file stem; check the folder you passed or use --id-from path")
        state.update(index=index, plan=plan, total=len(plan.jobs) + len(plan.problems))

    def drive_files(out, bar):
        for item in ingest(state["plan"], workers=workers, is_done=out.is_done):
            if isinstance(item, IngestedTrack):
                out.write_to("recordings", item.recording)
                out.write_to("supervisions", item.supervision)
                out.write(item.cut)
            else:
                out.reject(item)
            bar.update(1)
        bar.update(state["total"] - bar.n)

    def finalize(out, report):
        index, plan = state["index"], state["plan"]
        out.summary.extra.update(files=state["total"], metadata_records=len(index.records),
                                 metadata_without_audio=len(index.unmatched()),
                                 audio_without_metadata=len(plan.unmatched_files))
        listing = {"path": str(audio_dir), "files": state["total"],
                   "listing_sha256": _listing_digest(Path(audio_dir), [job[0] for job in plan.jobs])}
        return dict(options=dict(output=str(output), workers=workers), inputs=[listing, *inputs],
                    tallies={"tracks_without_metadata": _no_metadata})

    def summary(out, report, seconds):
        index, plan = state["index"], state["plan"]
        unmatched = index.unmatched()
        lines = [f"files {state['total']}  →  " + done_line(out) + f" ({out.summary.hours:.3f} h)",
                 rejected_line(out.summary.rejected),
                 f"metadata: {len(index.records)} records from {len(metadata_files)} files; "
                 f"{len(unmatched)} without audio; {len(plan.unmatched_files)} audio files without metadata",
                 f"took {seconds:.1f} s"]
        lines += [f"note: {note}" for note in index.notes]
        if unmatched:
            lines.append("metadata without audio (first 5): " + ", ".join(r.path or r.id or "?" for r in unmatched[:5]))
        if plan.unmatched_files and metadata_files:
            lines.append("audio without metadata (first 5): " + ", ".join(plan.unmatched_files[:5]))
        return lines

    return run_stage(StagePlan(
        "ingest", Path(output), config, drive_files, summary, finalize, check=check, total=lambda: state["total"],
        unit="file", streams=("recordings", "supervisions"), validator=validate_manifest),
        resume=resume, overwrite=overwrite)


def _no_metadata(cut: dict) -> bool:
    custom = cut.get("custom") or {}
    return "caption" not in custom and "tags" not in custom


def _listing_digest(root: Path, files: list[Path]) -> str:
    """sha256 over (relative path, size) of the audio files: changes when the folder does."""
    digest = hashlib.sha256()
    for path in files:
        digest.update(f"{path.relative_to(root).as_posix()}\t{path.stat().st_size}\n".encode())
    return digest.hexdigest()

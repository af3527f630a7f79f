"""Ingest: an audio folder plus metadata -> Lhotse recordings, supervisions and cuts.

Every file under the folder is considered. Each audio file is decoded completely (see
`curate.audio.probe_audio`), so durations, sample rates and channel counts come from the
audio, never from the metadata, and a file that cannot be used is quarantined with the
reason instead of failing a later stage. Metadata (caption, tags, licence) is matched by path
(`curate.metadata.MetadataIndex`).

Per track: one ``Recording``, one ``SupervisionSegment`` covering it (``text`` = the caption
as the metadata gave it, ``custom["tags"]``), and one cut (``MonoCut`` for mono files,
``MultiCut`` for multi-channel ones) whose ``custom`` carries the working fields later stages
read and rewrite: ``caption``, ``tags``, ``license``, ``relpath``.
"""

from __future__ import annotations

import errno
import hashlib
import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from lhotse import Recording, SupervisionSegment
from lhotse.audio import AudioSource
from lhotse.cut import Cut
from lhotse.utils import fastcopy

from scoreaware.core.errors import StageError
from scoreaware.core.output import Rejection
from scoreaware.core.parallel import DEFAULT_WORKERS, ordered_map
from scoreaware.core.provenance import describe_input
from scoreaware.core.stage import (
    StagePlan,
    StageResult,
    done_line,
    option,
    output_options,
    recorded_options,
    rejected_line,
    run_stage,
)
from scoreaware.curate.audio import AudioInfo, AudioProblem, probe_audio
from scoreaware.curate.metadata import MetadataIndex, TrackMeta
from scoreaware.schemas.validation import validate_manifest

STAGE = "ingest"


@dataclass(frozen=True)
class IngestConfig:
    """Options of the ingest stage (`curate ingest`'s options, one for one)."""

    # compared on --resume by their contents (name + sha256), not their paths
    metadata_files: tuple[Path, ...] = option((), changes_output=False)
    metadata_encoding: str | None = None  # None: UTF-8, or UTF-16 with a BOM
    id_from: str = "stem"  # recording ids from the file "stem" or the relative "path"
    workers: int = option(DEFAULT_WORKERS, changes_output=False)  # decoding threads


@dataclass(frozen=True)
class IngestedTrack:
    """The three manifests one audio file becomes."""

    recording: Recording
    supervision: SupervisionSegment
    cut: Cut


@dataclass(frozen=True)
class ScanResult:
    """What a walk of the audio folder found: files to ingest, and entries to quarantine."""

    files: list[Path]
    problems: list[Rejection]


def scan_audio_dir(root: str | os.PathLike, exclude: Iterable[str | os.PathLike] = ()) -> ScanResult:
    """Every non-hidden file under `root`, sorted by relative path (minus `exclude`).

    Symlinked folders are followed once; a link back into a folder already walked (a loop)
    and links whose target is missing or loops are reported as problems, not followed.
    """
    root = Path(root)
    if not root.is_dir():
        raise NotADirectoryError(f"{root} is not a folder")
    skip = {os.path.realpath(p) for p in exclude}
    files: list[Path] = []
    problems: list[Rejection] = []
    walked = {os.path.realpath(root)}

    def problem(path: Path, reason: str, detail: str) -> None:
        rel = path.relative_to(root).as_posix()
        problems.append(Rejection(rel, STAGE, reason, detail, str(path)))

    for dirpath, dirnames, filenames in os.walk(root, followlinks=True):
        keep = []
        for name in sorted(dirnames):
            if name.startswith("."):
                continue
            full = Path(dirpath) / name
            real = os.path.realpath(full)
            if real in walked:  # a link to a folder on the current path (a loop) or walked already
                ancestor = os.path.realpath(dirpath).startswith(real.rstrip(os.sep) + os.sep) or \
                    real == os.path.realpath(dirpath)
                problem(full, "symlink_loop" if ancestor else "linked_twice",
                        f"links to {real}, which is {'its own ancestor' if ancestor else 'already scanned'}")
                continue
            walked.add(real)
            keep.append(name)
        dirnames[:] = keep
        for name in sorted(filenames):
            path = Path(dirpath) / name
            if name.startswith("."):
                continue
            if path.is_symlink():
                try:
                    os.stat(path)
                except OSError as exc:
                    looped = exc.errno == errno.ELOOP
                    problem(path, "symlink_loop" if looped else "dangling_symlink",
                            f"symlink to {os.readlink(path)!r}: " + ("it loops" if looped else "target missing"))
                    continue
            if os.path.realpath(path) not in skip:
                files.append(path)
    files.sort(key=lambda p: p.relative_to(root).as_posix())
    problems.sort(key=lambda r: r.id)
    return ScanResult(files, problems)


def track_id(relpath: str, id_from: str) -> str:
    """Recording id of a file: its stem (``00/1085700.mp3`` -> ``1085700``) or its path."""
    if id_from == "stem":
        return Path(relpath).stem
    if id_from == "path":
        return str(Path(relpath).with_suffix("")).replace(os.sep, "/").replace("/", "__")
    raise ValueError(f"id_from={id_from!r} not implemented (use 'stem' or 'path')")


def build_track(path: Path, relpath: str, rid: str, info: AudioInfo, meta: TrackMeta | None) -> IngestedTrack:
    """Recording + supervision + cut for one decoded file.

    When the metadata names an excerpt of a longer source (MusicCaps' ``start_s``/``end_s``)
    and the file holds the whole source, the cut covers only the excerpt.
    """
    channels = list(range(info.num_channels))
    recording = Recording(
        id=rid,
        sources=[AudioSource(type="file", channels=channels, source=str(path.absolute()))],
        sampling_rate=info.sampling_rate,
        num_samples=info.num_samples,
        duration=info.duration,
    )
    custom: dict = {"relpath": relpath}
    start, duration = 0.0, recording.duration
    if meta is not None:
        for name in ("caption", "license", "artist", "title"):
            if getattr(meta, name):
                custom[name] = getattr(meta, name)
        if len(meta.captions) > 1:
            custom["captions"] = list(meta.captions)
        if meta.tags:
            custom["tags"] = list(meta.tags)
        if meta.excerpt is not None:
            begin, end = meta.excerpt
            if recording.duration > (end - begin) + 0.5 and recording.duration >= end - 0.05:
                start, duration = begin, min(end, recording.duration) - begin
                custom.update(excerpt_start=begin, excerpt_end=begin + duration)
    supervision = SupervisionSegment(
        id=rid,
        recording_id=rid,
        start=start,
        duration=duration,
        channel=channels[0] if len(channels) == 1 else channels,
        text=meta.caption if meta else None,
        custom={"tags": list(meta.tags)} if meta and meta.tags else None,
    )
    cut = recording.to_cut()
    if start or duration < recording.duration:
        cut = cut.truncate(offset=start, duration=duration, preserve_id=True)
    cut = fastcopy(cut, supervisions=[fastcopy(supervision, start=0.0)], custom=custom)
    return IngestedTrack(recording, supervision, cut)


@dataclass
class IngestPlan:
    """Files to decode, problems found before decoding, and how metadata matched."""

    jobs: list[tuple[Path, str, str, TrackMeta | None]]
    problems: list[Rejection]
    matched_files: int = 0
    unmatched_files: list[str] = field(default_factory=list)


def plan_ingest(audio_dir: str | os.PathLike, metadata: MetadataIndex | None = None, *, id_from: str = "stem",
                exclude: Iterable[str | os.PathLike] = ()) -> IngestPlan:
    """Walk `audio_dir`, assign ids and match metadata (nothing is decoded yet)."""
    root = Path(audio_dir)
    scan = scan_audio_dir(root, exclude)
    plan = IngestPlan([], list(scan.problems))
    seen: dict[str, str] = {}
    for path in scan.files:
        relpath = path.relative_to(root).as_posix()
        rid = track_id(relpath, id_from)
        if rid in seen:  # same stem in two folders: keep the first, report the second
            plan.problems.append(Rejection(relpath, STAGE, "duplicate_id",
                                           f"id {rid!r} already used by {seen[rid]}; try --id-from path", str(path)))
            continue
        seen[rid] = relpath
        meta = metadata.lookup(relpath) if metadata is not None else None
        if meta is not None:
            plan.matched_files += 1
        else:
            plan.unmatched_files.append(relpath)
        plan.jobs.append((path, relpath, rid, meta))
    return plan


def ingest(
    plan: IngestPlan,
    *,
    workers: int = 2,
    is_done: Callable[[str], bool] = lambda _: False,
) -> Iterator[IngestedTrack | Rejection]:
    """Decode the planned files; yield one :class:`IngestedTrack` or :class:`Rejection` per file.

    :param plan: from `plan_ingest`.
    :param workers: decoding threads.
    :param is_done: ids already written by an interrupted run; their files are not decoded again.
    """
    yield from (p for p in plan.problems if not is_done(p.id))
    pending = [job for job in plan.jobs if not (is_done(job[2]) or is_done(job[1]))]

    def probe(job: tuple) -> AudioInfo | AudioProblem:
        try:
            return probe_audio(job[0])
        except AudioProblem as problem:
            return problem
        except OSError as exc:  # vanished or unreadable since the scan
            return AudioProblem("unreadable", f"{type(exc).__name__}: {exc}"[:300])

    for (path, relpath, rid, meta), result in ordered_map(probe, pending, workers=workers):
        if isinstance(result, AudioProblem):
            yield Rejection(relpath, STAGE, result.reason, result.detail, str(path))
            continue
        yield build_track(path, relpath, rid, result, meta)


def run_ingest(audio_dir: Path, output: Path, config: IngestConfig = IngestConfig(), *, resume: bool = False,
               overwrite: bool = False) -> StageResult:
    """Build recordings, supervisions and cuts from `audio_dir` and its metadata into `output`.

    Undecodable files go to the quarantine manifest with the reason. When metadata is given but
    matches no audio file at all, nothing is written and examples of both sides are shown.
    """
    metadata_files = tuple(Path(p) for p in config.metadata_files)
    encoding, id_from = config.metadata_encoding, config.id_from
    inputs = [describe_input(p) for p in metadata_files]
    key = dict(audio_dir=str(Path(audio_dir).resolve()), **output_options(config),
               metadata=[{"name": p.name, "sha256": i["sha256"]} for p, i in zip(metadata_files, inputs)])
    state: dict = {}

    def check() -> None:
        index = MetadataIndex(metadata_files, encoding=encoding)
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
        for item in ingest(state["plan"], workers=config.workers, is_done=out.is_done):
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
        return dict(options=dict(output=str(output), **recorded_options(config)), inputs=[listing, *inputs],
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
        STAGE, Path(output), key, drive_files, summary, finalize, check=check, total=lambda: state["total"],
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

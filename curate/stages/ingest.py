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

import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from lhotse import Recording, SupervisionSegment
from lhotse.audio import AudioSource
from lhotse.cut import Cut
from lhotse.utils import fastcopy

from curate.audio import AudioInfo, AudioProblem, probe_audio
from curate.io import Rejection
from curate.metadata import MetadataIndex, TrackMeta
from curate.parallel import ordered_map

STAGE = "ingest"


@dataclass(frozen=True)
class IngestedTrack:
    """The three manifests one audio file becomes."""

    recording: Recording
    supervision: SupervisionSegment
    cut: Cut


def scan_audio_dir(root: str | os.PathLike, exclude: Iterable[str | os.PathLike] = ()) -> list[Path]:
    """Every non-hidden file under `root`, sorted by relative path (minus `exclude`)."""
    root = Path(root)
    if not root.is_dir():
        raise NotADirectoryError(f"{root} is not a folder")
    skip = {Path(p).resolve() for p in exclude}
    files = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in sorted(filenames):
            path = Path(dirpath) / name
            if not name.startswith(".") and path.resolve() not in skip:
                files.append(path)
    return sorted(files, key=lambda p: p.relative_to(root).as_posix())


def track_id(relpath: str, id_from: str) -> str:
    """Recording id of a file: its stem (``00/1085700.mp3`` -> ``1085700``) or its path."""
    if id_from == "stem":
        return Path(relpath).stem
    if id_from == "path":
        return str(Path(relpath).with_suffix("")).replace(os.sep, "/").replace("/", "__")
    raise ValueError(f"id_from={id_from!r} not implemented (use 'stem' or 'path')")


def build_track(path: Path, relpath: str, rid: str, info: AudioInfo, meta: TrackMeta | None) -> IngestedTrack:
    """Recording + supervision + cut for one decoded file."""
    channels = list(range(info.num_channels))
    recording = Recording(
        id=rid,
        sources=[AudioSource(type="file", channels=channels, source=str(path.resolve()))],
        sampling_rate=info.sampling_rate,
        num_samples=info.num_samples,
        duration=info.duration,
    )
    custom: dict = {"relpath": relpath}
    if meta is not None:
        for name in ("caption", "license", "artist", "title"):
            if getattr(meta, name):
                custom[name] = getattr(meta, name)
        if meta.tags:
            custom["tags"] = list(meta.tags)
    supervision = SupervisionSegment(
        id=rid,
        recording_id=rid,
        start=0.0,
        duration=recording.duration,
        channel=channels[0] if len(channels) == 1 else channels,
        text=meta.caption if meta else None,
        custom={"tags": list(meta.tags)} if meta and meta.tags else None,
    )
    cut = fastcopy(recording.to_cut(), supervisions=[supervision], custom=custom)
    return IngestedTrack(recording, supervision, cut)


def ingest(
    audio_dir: str | os.PathLike,
    metadata: MetadataIndex | None = None,
    *,
    id_from: str = "stem",
    workers: int = 2,
    is_done: Callable[[str], bool] = lambda _: False,
    exclude: Iterable[str | os.PathLike] = (),
) -> Iterator[IngestedTrack | Rejection]:
    """Walk `audio_dir` and yield one :class:`IngestedTrack` or :class:`Rejection` per file.

    :param audio_dir: folder of audio files (searched recursively).
    :param metadata: merged metadata to attach; None ingests audio only.
    :param id_from: recording ids from the file ``stem`` or the relative ``path``.
    :param workers: decoding threads.
    :param is_done: ids already written by an interrupted run; their files are not decoded again.
    :param exclude: files to ignore (e.g. metadata files kept inside the audio folder).
    """
    root = Path(audio_dir)
    seen: dict[str, str] = {}
    pending = []
    for path in scan_audio_dir(root, exclude):
        relpath = path.relative_to(root).as_posix()
        rid = track_id(relpath, id_from)
        if rid in seen:  # same stem in two folders: keep the first, report the second
            yield Rejection(relpath, STAGE, "duplicate_id",
                            f"id {rid!r} already used by {seen[rid]}; try --id-from path", str(path))
            continue
        seen[rid] = relpath
        meta = metadata.lookup(relpath) if metadata is not None else None  # also when done
        if not (is_done(rid) or is_done(relpath)):
            pending.append((path, relpath, rid, meta))

    def probe(job: tuple) -> AudioInfo | AudioProblem:
        try:
            return probe_audio(job[0])
        except AudioProblem as problem:
            return problem

    for (path, relpath, rid, meta), result in ordered_map(probe, pending, workers=workers):
        if isinstance(result, AudioProblem):
            yield Rejection(relpath, STAGE, result.reason, result.detail, str(path))
            continue
        yield build_track(path, relpath, rid, result, meta)

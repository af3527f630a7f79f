"""Read track metadata in the formats music datasets ship, and match it to audio files.

Formats (detected from the file, not only its name):

* MTG-Jamendo tags TSV (``autotagging*.tsv``): header ``TRACK_ID ARTIST_ID ALBUM_ID PATH
  DURATION TAGS``, tags as extra tab-separated ``genre---rock`` fields.
* The ATTM challenge caption JSON: ``[{"path": "00/1085700.mp3", "caption": "..."}]``.
* Plain JSONL or CSV with any of ``id, path, caption, tags, license, artist, title``
  (``tags`` as a list, or a string separated by ``,`` or ``;``); other columns are kept in
  ``extra``.

Several files merge in the order given: later files set scalar fields they have, tags are
unioned. A record matches an audio file by relative path, then by relative path without
extension, then by id (the file stem; Jamendo ``track_0000214`` also matches ``214``).
"""

from __future__ import annotations

import csv
import json
import os
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

KNOWN_FIELDS = ("id", "path", "caption", "tags", "license", "artist", "title")


class MetadataError(ValueError):
    """A metadata file that cannot be read; the message names the file and the line."""


@dataclass
class TrackMeta:
    """What the metadata says about one track."""

    id: str | None = None
    path: str | None = None
    caption: str | None = None
    tags: list[str] = field(default_factory=list)
    license: str | None = None
    artist: str | None = None
    title: str | None = None
    extra: dict = field(default_factory=dict)
    origin: list[str] = field(default_factory=list)  # which files contributed

    def merge(self, other: TrackMeta) -> None:
        """Fold `other` into this record (its scalars win; tags are unioned)."""
        for name in ("id", "path", "caption", "license", "artist", "title"):
            value = getattr(other, name)
            if value not in (None, ""):
                setattr(self, name, value)
        self.tags = list(dict.fromkeys([*self.tags, *other.tags]))
        self.extra.update(other.extra)
        self.origin.extend(o for o in other.origin if o not in self.origin)


def _norm_path(path: str) -> str:
    return str(PurePosixPath(path.replace("\\", "/"))) if path else path


def _split_tags(value) -> list[str]:
    if value is None:
        return []
    if isinstance(value, list):
        return [str(v).strip() for v in value if str(v).strip()]
    return [t.strip() for t in re.split(r"[;,]", str(value)) if t.strip()]


def _jamendo_id(track_id: str) -> str:
    match = re.fullmatch(r"track_0*(\d+)", track_id.strip())
    return match.group(1) if match else track_id.strip()


# ------------------------------------------------------------------------ readers
def read_jamendo_tsv(path: Path) -> Iterator[TrackMeta]:
    """MTG-Jamendo ``autotagging*.tsv`` rows."""
    with open(path, newline="", encoding="utf-8") as f:
        header = f.readline().rstrip("\n").split("\t")
        if header[:4] != ["TRACK_ID", "ARTIST_ID", "ALBUM_ID", "PATH"]:
            raise MetadataError(f"{path}: not an MTG-Jamendo TSV (header {header[:4]})")
        for number, line in enumerate(f, start=2):
            if not line.strip():
                continue
            cells = line.rstrip("\n").split("\t")
            if len(cells) < 5:
                raise MetadataError(f"{path}:{number}: expected at least 5 tab-separated fields")
            yield TrackMeta(
                id=_jamendo_id(cells[0]),
                path=_norm_path(cells[3]),
                tags=[t for t in cells[5:] if t],
                artist=cells[1] or None,
                extra={"jamendo_track_id": cells[0], "album_id": cells[2]},
                origin=[path.name],
            )


def read_caption_json(path: Path) -> Iterator[TrackMeta]:
    """The challenge's ``[{"path": ..., "caption": ...}]`` list."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise MetadataError(f"{path}: invalid JSON ({exc})") from None
    if isinstance(data, dict):  # {"path": "caption"} mapping, a common variant
        data = [{"path": k, "caption": v} for k, v in data.items()]
    if not isinstance(data, list):
        raise MetadataError(f"{path}: expected a JSON list of objects")
    for number, row in enumerate(data):
        if not isinstance(row, dict):
            raise MetadataError(f"{path}: item {number} is not an object")
        yield _from_row(row, path, f"item {number}")


def read_jsonl(path: Path) -> Iterator[TrackMeta]:
    """One JSON object per line."""
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise MetadataError(f"{path}:{number}: invalid JSON ({exc})") from None
            yield _from_row(row, path, f"line {number}")


def read_csv(path: Path) -> Iterator[TrackMeta]:
    """Comma- or tab-separated table with a header row."""
    with open(path, newline="", encoding="utf-8") as f:
        sample = f.read(4096)
        f.seek(0)
        dialect = csv.Sniffer().sniff(sample, delimiters=",\t;") if sample else csv.excel
        for number, row in enumerate(csv.DictReader(f, dialect=dialect), start=2):
            yield _from_row(row, path, f"line {number}")


def _from_row(row: dict, path: Path, where: str) -> TrackMeta:
    if not row.get("id") and not row.get("path"):
        raise MetadataError(f"{path} {where}: needs an 'id' or a 'path' field")
    caption = row.get("caption")
    return TrackMeta(
        id=str(row["id"]).strip() if row.get("id") not in (None, "") else None,
        path=_norm_path(str(row["path"])) if row.get("path") else None,
        caption=str(caption).strip() if caption not in (None, "") else None,
        tags=_split_tags(row.get("tags")),
        license=row.get("license") or None,
        artist=row.get("artist") or None,
        title=row.get("title") or None,
        extra={k: v for k, v in row.items() if k not in KNOWN_FIELDS and v not in (None, "")},
        origin=[path.name],
    )


def detect_format(path: Path) -> str:
    """'jamendo', 'caption_json', 'jsonl' or 'csv', from the name and first bytes."""
    with open(path, encoding="utf-8", errors="replace") as f:
        head = f.read(256).lstrip()
    if head.startswith("TRACK_ID\tARTIST_ID"):
        return "jamendo"
    if head.startswith("[") or (path.suffix == ".json" and head.startswith("{")):
        return "caption_json"
    if head.startswith("{"):
        return "jsonl"
    if path.suffix.lower() in (".csv", ".tsv", ".txt"):
        return "csv"
    raise MetadataError(f"{path}: unknown metadata format (expected Jamendo TSV, JSON, JSONL or CSV)")


READERS = {"jamendo": read_jamendo_tsv, "caption_json": read_caption_json, "jsonl": read_jsonl, "csv": read_csv}


def read_metadata(path: str | os.PathLike) -> list[TrackMeta]:
    """All records of one metadata file."""
    path = Path(path)
    return list(READERS[detect_format(path)](path))


# ------------------------------------------------------------------------- index
class MetadataIndex:
    """Merged metadata of several files, looked up by audio file path."""

    def __init__(self, files: Iterable[str | os.PathLike] = ()) -> None:
        self.records: list[TrackMeta] = []
        self._by_key: dict[str, TrackMeta] = {}
        self._matched: set[int] = set()
        self.files = [Path(f) for f in files]
        for path in self.files:
            for record in read_metadata(path):
                self._add(record)

    def _keys(self, record: TrackMeta) -> list[str]:
        keys = []
        if record.path:
            keys += [f"path:{record.path}", f"stem:{_strip_ext(record.path)}"]
        if record.id:
            keys.append(f"id:{record.id}")
        return keys

    def _add(self, record: TrackMeta) -> None:
        existing = next((self._by_key[k] for k in self._keys(record) if k in self._by_key), None)
        if existing is None:
            self.records.append(record)
            existing = record
        else:
            existing.merge(record)
        for key in self._keys(existing):
            self._by_key[key] = existing

    def lookup(self, relpath: str) -> TrackMeta | None:
        """The record for an audio file at `relpath` (relative to the audio folder)."""
        relpath = _norm_path(relpath)
        stem = PurePosixPath(relpath).stem
        for key in (f"path:{relpath}", f"stem:{_strip_ext(relpath)}", f"id:{stem}"):
            if key in self._by_key:
                record = self._by_key[key]
                self._matched.add(id(record))
                return record
        return None

    def unmatched(self) -> list[TrackMeta]:
        """Records no audio file looked up (metadata without audio)."""
        return [r for r in self.records if id(r) not in self._matched]


def _strip_ext(path: str) -> str:
    return str(PurePosixPath(path).with_suffix(""))

"""Read track metadata in the layouts music datasets ship, and match it to audio files.

Layouts (the table's columns decide, the file name only picks CSV vs TSV):

* MTG-Jamendo tags TSV (``autotagging*.tsv``): ``TRACK_ID ARTIST_ID ALBUM_ID PATH DURATION
  TAGS``, tags as extra tab-separated ``genre---rock`` fields.
* The ATTM challenge caption JSON: ``[{"path": "00/1085700.mp3", "caption": "..."}]``, or an
  object ``{"00/1085700.mp3": "caption"}`` / ``{"...": {"caption": ...}}``.
* Song Describer (``song_describer.csv``): ``caption_id, track_id, caption, ..., path``; several
  captions per track; the distributed audio is ``xx/ID.2min.mp3`` where the CSV says ``xx/ID.mp3``.
* MusicCaps (``musiccaps-public.csv``): ``ytid, start_s, end_s, ..., aspect_list, caption``;
  ``aspect_list`` (a Python-list string) becomes the tags.
* AudioCaps (``train.csv`` ...): ``audiocap_id, youtube_id, start_time, caption``.
* Plain JSONL, CSV or TSV with any of ``id, path, caption, tags, license, artist, title``
  (``tags`` as a list, a ``,``/``;`` string or a Python-list string); other columns are kept
  in ``extra``.

Text is decoded strictly (UTF-8 by default, a BOM stripped; UTF-16 with a BOM is recognised);
a byte that does not decode is an error naming the file, line and byte offset. Every error
message starts with ``file:line:``.

Several files merge in the order given: later files set the scalar fields they have, tags
and captions are unioned (every caption of a track is kept in ``captions``). A record matches
an audio file by relative path, then by that path with fewer suffixes (``ID.2min.mp3``,
``ID.low.mp3`` match ``ID.mp3``), then by id (the file stem likewise; Jamendo
``track_0000214`` also matches ``214``; YouTube-sourced records also match ``Y<id>`` and
``<id>_<start>``).
"""

from __future__ import annotations

import ast
import csv
import io
import json
import math
import os
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from scoreaware.core.errors import ManifestError, StageError
from scoreaware.core.files import iter_json_text, loads_checked
from scoreaware.schemas.fields import CAPTION

KNOWN_FIELDS = ("id", "path", "caption", "tags", "license", "artist", "title")


class MetadataError(StageError, ValueError):
    """A metadata file that cannot be read; the message starts with ``file:line:``."""


@dataclass
class TrackMeta:
    """What the metadata says about one track."""

    id: str | None = None
    path: str | None = None
    caption: str | None = None
    captions: list[str] = field(default_factory=list)  # every caption given, in order
    tags: list[str] = field(default_factory=list)
    license: str | None = None
    artist: str | None = None
    title: str | None = None
    excerpt: tuple[float, float] | None = None  # (start, end) seconds of a longer source (MusicCaps)
    aliases: list[str] = field(default_factory=list)  # more ids the audio file may be named by
    extra: dict = field(default_factory=dict)
    origin: list[str] = field(default_factory=list)  # which files contributed

    def merge(self, other: TrackMeta) -> None:
        """Fold `other` into this record: its scalars win (a caption only when it comes from
        another file: rows of one file add captions), tags and captions are unioned."""
        new_file = bool(other.origin) and other.origin[0] not in self.origin
        for name in ("id", "path", "license", "artist", "title", "excerpt"):
            value = getattr(other, name)
            if value not in (None, ""):
                setattr(self, name, value)
        if other.caption and (new_file or not self.caption):
            self.caption = other.caption
        self.captions = list(dict.fromkeys([*self.captions, *other.captions]))
        self.tags = list(dict.fromkeys([*self.tags, *other.tags]))
        self.aliases = list(dict.fromkeys([*self.aliases, *other.aliases]))
        self.extra.update(other.extra)
        self.origin.extend(o for o in other.origin if o not in self.origin)


def _norm_path(path: str) -> str:
    return str(PurePosixPath(path.replace("\\", "/"))) if path else path


def _split_tags(value) -> list[str]:
    if value is None:
        return []
    if isinstance(value, list):
        return [str(v).strip() for v in value if str(v).strip()]
    text = str(value).strip()
    if text.startswith("[") and text.endswith("]"):  # a list written as a string (MusicCaps aspect_list)
        try:
            parsed = ast.literal_eval(text)
        except (ValueError, SyntaxError):
            parsed = None
        if isinstance(parsed, (list, tuple)):
            return [str(v).strip() for v in parsed if str(v).strip()]
    return [t.strip() for t in re.split(r"[;,]", text) if t.strip()]


def _jamendo_id(track_id: str) -> str:
    match = re.fullmatch(r"track_0*(\d+)", track_id.strip())
    return match.group(1) if match else track_id.strip()


# -------------------------------------------------------------------------- decoding
def read_text(path: Path, encoding: str | None = None) -> str:
    """The file's text, decoded strictly; a BOM is stripped (UTF-16 recognised by its BOM)."""
    data = path.read_bytes()
    if encoding is None:
        if data.startswith((b"\xff\xfe", b"\xfe\xff")):
            encoding = "utf-16"
        else:
            encoding = "utf-8-sig"
    try:
        text = data.decode(encoding)
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        name = {"utf-8-sig": "UTF-8", "utf-16": "UTF-16"}.get(encoding, encoding)
        raise MetadataError(f"{path}:{line}: byte {exc.start} (0x{data[exc.start]:02x}) is not valid {name}; "
                            "pass --metadata-encoding with the file's encoding (e.g. latin-1, cp1252)") from None
    except LookupError:
        raise MetadataError(f"{path}:1: unknown encoding {encoding!r}") from None
    return text.lstrip("\ufeff")


# ------------------------------------------------------------------------ readers
def read_jamendo_tsv(path: Path, text: str) -> Iterator[TrackMeta]:
    """MTG-Jamendo ``autotagging*.tsv`` rows."""
    lines = text.splitlines()
    header = lines[0].split("\t") if lines else []
    if header[:4] != ["TRACK_ID", "ARTIST_ID", "ALBUM_ID", "PATH"]:
        raise MetadataError(f"{path}:1: not an MTG-Jamendo TSV (header {header[:4]})")
    for number, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue
        cells = line.split("\t")
        if len(cells) < 5:
            raise MetadataError(f"{path}:{number}: expected at least 5 tab-separated fields, got {len(cells)}")
        yield TrackMeta(
            id=_jamendo_id(cells[0]),
            path=_norm_path(cells[3]),
            tags=[t.strip() for t in cells[5:] if t.strip()],
            artist=cells[1] or None,
            extra={"jamendo_track_id": cells[0], "album_id": cells[2]},
            origin=[path.name],
        )


def _json_line_of(text: str, position: int) -> int:
    return text.count("\n", 0, position) + 1


def read_caption_json(path: Path, text: str) -> Iterator[TrackMeta]:
    """A JSON list of records, or an object mapping paths to captions (or to records)."""
    data = loads_checked(text, f"{path}:{{line}}", MetadataError)
    if isinstance(data, dict):
        rows = []
        for key, value in data.items():
            if isinstance(value, (str, list)):
                rows.append({"path": key, "caption": value})
            elif isinstance(value, dict):
                rows.append({"path": key, **value})
            else:
                line = _json_line_of(text, text.find(json.dumps(key)))
                raise MetadataError(f"{path}:{line}: the value of {key!r} must be a caption (text) or an object, "
                                    f"got {type(value).__name__}")
        data = rows
    if not isinstance(data, list):
        raise MetadataError(f"{path}:1: expected a JSON list of objects or an object, got {type(data).__name__}")
    for number, row in enumerate(data):
        if not isinstance(row, dict):
            raise MetadataError(f"{path}:1: item {number} is a {type(row).__name__}, not an object")
        yield _from_row(row, path, f"1: item {number}")


def read_jsonl(path: Path, text: str) -> Iterator[TrackMeta]:
    """One JSON object per line (the one line-numbered reader, `core.files.iter_json_text`)."""
    try:
        for number, row in iter_json_text(text, path):
            yield _from_row(row, path, str(number))
    except ManifestError as exc:
        raise MetadataError(str(exc)) from None


# column name -> our field, per layout; the first layout whose required columns are present wins
LAYOUTS = {
    "song_describer": ({"caption_id", "track_id", "caption", "path"}, {"track_id": "id"}),
    "musiccaps": ({"ytid", "start_s", "end_s", "caption"}, {"ytid": "id", "aspect_list": "tags"}),
    "audiocaps": ({"audiocap_id", "youtube_id", "caption"}, {"youtube_id": "id"}),
    "plain": (set(), {}),
}


def delimiter_for(path: Path, text: str) -> tuple[str, str | None]:
    """(delimiter, note): ``.csv`` is comma-, ``.tsv`` tab-separated; otherwise the header
    line decides and the note says what was assumed (never silently)."""
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return ",", None
    if suffix == ".tsv":
        return "\t", None
    header = text.split("\n", 1)[0]
    for delimiter, name in (("\t", "tab"), (",", "comma"), (";", "semicolon")):
        if delimiter in header:
            return delimiter, f"{path.name}: read as {name}-separated (from its header line)"
    raise MetadataError(f"{path}:1: cannot tell how the columns are separated; name the file .csv or .tsv")


def read_table(path: Path, text: str, notes: list[str] | None = None) -> Iterator[TrackMeta]:
    """A CSV/TSV table with a header row, in any of the `LAYOUTS`.

    Read as CSV (RFC 4180 quoting: doubled quotes inside quoted fields, quoted newlines, CRLF or
    LF line ends), never with a guessed quote character.
    """
    delimiter, note = delimiter_for(path, text)
    if note and notes is not None:
        notes.append(note)
    # the text is in memory already, so no field is longer than it: lift csv's 128 KiB default, which
    # refused long captions that JSONL takes
    csv.field_size_limit(max(csv.field_size_limit(), len(text) + 1))
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, quotechar='"', doublequote=True,
                        strict=True)
    try:
        header = [h.strip() for h in next(reader, [])]
    except csv.Error as exc:
        raise MetadataError(f"{path}:1: not a readable table ({exc})") from None
    if not header or not any(header):
        return
    columns = set(header)
    layout, renames = next((name, spec[1]) for name, spec in LAYOUTS.items() if spec[0] <= columns)
    if len(set(header)) != len(header):
        raise MetadataError(f"{path}:1: repeated column names in the header {header}")
    while True:
        try:
            cells = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            raise MetadataError(f"{path}:{reader.line_num}: not a readable table row ({exc})") from None
        if not any(c.strip() for c in cells):
            continue
        if len(cells) > len(header):
            raise MetadataError(f"{path}:{reader.line_num}: {len(cells)} fields but the header has {len(header)} "
                                f"(a {delimiter!r} inside an unquoted field?)")
        row = {renames.get(k, k): v for k, v in zip(header, cells)}
        if layout == "musiccaps":
            row["excerpt"] = (row.pop("start_s", None), row.pop("end_s", None))
        if layout == "audiocaps":
            start = row.pop("start_time", None)
            row["excerpt"] = (start, float(start) + 10.0 if _is_number(start) else None)
        if layout == "song_describer":
            row.pop("caption_id", None)
        yield _from_row(row, path, str(reader.line_num), youtube=layout in ("musiccaps", "audiocaps"))


def _is_number(value) -> bool:
    try:
        float(value)
        return True
    except (TypeError, ValueError):
        return False


def _text_field(row: dict, name: str, path: Path, where: str) -> str | None:
    value = row.get(name)
    if value is None or value == "":
        return None
    if isinstance(value, (dict, list, bool)):
        raise MetadataError(f"{path}:{where}: {name} must be text, got {type(value).__name__}")
    if isinstance(value, float) and not math.isfinite(value):  # JSON NaN / Infinity: no text at all
        raise MetadataError(f"{path}:{where}: {name} must be text, got {value!r}")
    return str(value).strip() or None


def _from_row(row: dict, path: Path, where: str, youtube: bool = False) -> TrackMeta:
    ident = _text_field(row, "id", path, where)
    rel = _text_field(row, "path", path, where)
    if not ident and not rel:
        raise MetadataError(f"{path}:{where}: needs an 'id' or a 'path' field (columns: {sorted(row)[:8]})")
    caption = row.get(CAPTION)
    if isinstance(caption, list):
        if not all(isinstance(c, str) for c in caption):
            raise MetadataError(f"{path}:{where}: caption must be text or a list of texts")
        captions = [c.strip() for c in caption if c.strip()]
    else:
        one = _text_field(row, "caption", path, where)
        captions = [one] if one else []
    tags = row.get("tags")
    if tags is not None and not isinstance(tags, (str, list, int, float)):
        raise MetadataError(f"{path}:{where}: tags must be a list or a separated string, got {type(tags).__name__}")
    excerpt = None
    start, end = row.get("excerpt") or (None, None)
    if _is_number(start) and _is_number(end) and float(end) > float(start) >= 0:
        excerpt = (float(start), float(end))
    aliases = []
    if youtube and ident:
        aliases = [f"Y{ident}"]
        if excerpt:
            aliases += [f"{ident}_{excerpt[0]:g}", f"{ident}_{int(excerpt[0])}", f"{ident}_{int(excerpt[0] * 1000)}"]
    reserved = {*KNOWN_FIELDS, "excerpt"}
    return TrackMeta(
        id=ident,
        path=_norm_path(rel) if rel else None,
        caption=captions[0] if captions else None,
        captions=captions,
        tags=_split_tags(tags),
        license=_text_field(row, "license", path, where),
        artist=_text_field(row, "artist", path, where),
        title=_text_field(row, "title", path, where),
        excerpt=excerpt,
        aliases=aliases,
        extra={k: v for k, v in row.items() if k not in reserved and v not in (None, "")},
        origin=[path.name],
    )


def detect_format(path: Path, text: str | None = None) -> str:
    """'jamendo', 'caption_json', 'jsonl' or 'table', from the content (and CSV/TSV names)."""
    text = read_text(path) if text is None else text
    head = text.lstrip()[:256]
    if head.startswith("TRACK_ID\tARTIST_ID"):
        return "jamendo"
    if head.startswith("["):
        return "caption_json"
    if head.startswith("{"):
        if path.suffix.lower() == ".jsonl":
            return "jsonl"
        try:
            whole = json.loads(text)
        except json.JSONDecodeError:
            return "jsonl"
        except RecursionError:
            raise MetadataError(f"{path}:1: JSON nested too deeply to read") from None
        if isinstance(whole, dict) and {"id", "path"} & whole.keys():
            return "jsonl"  # a single record
        return "caption_json"  # one JSON object: a mapping of paths to captions
    if path.suffix.lower() in (".json", ".jsonl"):
        raise MetadataError(f"{path}:1: expected JSON (a list, an object, or one object per line), "
                            f"but it starts with {head[:20]!r}")
    if path.suffix.lower() in (".csv", ".tsv", ".txt") or "\t" in head or "," in head:
        return "table"
    raise MetadataError(f"{path}:1: unknown metadata format (expected Jamendo TSV, JSON, JSONL, CSV or TSV)")


READERS = {"jamendo": read_jamendo_tsv, "caption_json": read_caption_json, "jsonl": read_jsonl, "table": read_table}


def read_metadata(path: str | os.PathLike, encoding: str | None = None, notes: list[str] | None = None
                  ) -> list[TrackMeta]:
    """All records of one metadata file."""
    path = Path(path)
    text = read_text(path, encoding)
    kind = detect_format(path, text)
    if kind == "table":
        return list(read_table(path, text, notes))
    return list(READERS[kind](path, text))


# ------------------------------------------------------------------------- index
def path_keys(relpath: str) -> list[str]:
    """Keys an audio file at `relpath` answers to, most specific first: the path, the path
    with fewer suffixes, then the same for the file name alone (the id)."""
    relpath = _norm_path(relpath)
    posix = PurePosixPath(relpath)
    parts = posix.name.split(".")
    keys = [f"path:{relpath}"]
    for cut in range(len(parts) - 1, 0, -1):  # a/ID.2min.mp3 -> a/ID.2min -> a/ID
        keys.append(f"stem:{(posix.parent / '.'.join(parts[:cut])).as_posix()}")
    for cut in range(len(parts) - 1, 0, -1):
        keys.append(f"id:{'.'.join(parts[:cut])}")
    if len(parts) == 1:
        keys.append(f"id:{posix.name}")
    return keys


class MetadataIndex:
    """Merged metadata of several files, looked up by audio file path."""

    def __init__(self, files: Iterable[str | os.PathLike] = (), encoding: str | None = None) -> None:
        self.records: list[TrackMeta] = []
        self.notes: list[str] = []
        self._by_key: dict[str, TrackMeta] = {}
        self._matched: set[int] = set()
        self.files = [Path(f) for f in files]
        for path in self.files:
            for record in read_metadata(path, encoding, self.notes):
                self._add(record)

    def _keys(self, record: TrackMeta) -> list[str]:
        keys = []
        if record.path:
            keys += [f"path:{record.path}", f"stem:{_strip_ext(record.path)}"]
        if record.id:
            keys.append(f"id:{record.id}")
        keys += [f"id:{alias}" for alias in record.aliases]
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
        for key in path_keys(relpath):
            if key in self._by_key:
                record = self._by_key[key]
                self._matched.add(id(record))
                return record
        return None

    def unmatched(self) -> list[TrackMeta]:
        """Records no audio file looked up (metadata without audio)."""
        return [r for r in self.records if id(r) not in self._matched]

    @property
    def matched(self) -> int:
        return len(self._matched)


def _strip_ext(path: str) -> str:
    return str(PurePosixPath(path).with_suffix(""))

"""Reading cut manifests: lazily, portably, and with errors that name the file, line and field.

Portable paths. Stage outputs store audio sources and array folders *relative to the
manifest's own folder* (see `portable`), so a curated folder can be moved, copied to another
machine, published and pulled. `read_cuts` resolves them against the manifest's folder (not
the working directory). Absolute paths and URLs are left as they are. Plain Lhotse users
prefix the audio and the arrays with the manifest's folder (the recipe in docs/concepts.md,
"Portable manifests"), or simply call `read_cuts`.

Errors. A manifest line that is not UTF-8, not JSON, not an object or not a cut, and a gzip
stream that ends early, raise :class:`ManifestError` naming ``file:line``. Field-level problems
(a non-numeric score, a NaN, a missing id) are found by `check_input`, which runs the pandera
schema over the whole input before a stage starts, so a stage never dies halfway through on a
bad row.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path

from lhotse import CutSet
from lhotse.serialization import deserialize_item

from scoreaware.core.errors import ManifestError
from scoreaware.core.files import count_lines, iter_json_lines

CUT_TYPES = ("MonoCut", "MultiCut", "MixedCut", "PaddingCut")


def _is_local(path: object) -> bool:
    return isinstance(path, str) and bool(path) and "://" not in path


def relativize(path: str, root: Path) -> str:
    """A local path as seen from `root` (``..`` allowed); URLs unchanged.

    An in-memory Lhotse object's relative path means "from the working directory" (that is how
    Lhotse opens it; `resolve` makes every path read from a manifest absolute), so it is made
    absolute from there first: written as it is, it would be read back from `root` instead."""
    if _is_local(path):
        try:
            return os.path.relpath(os.path.abspath(path), root)
        except ValueError:  # another drive on Windows: keep it absolute
            return path
    return path


def resolve(path: str, root: Path) -> str:
    """A relative local path resolved against `root`; absolute paths and URLs unchanged."""
    if _is_local(path) and not os.path.isabs(path):
        return os.path.normpath(os.path.join(root, path))
    return path


def map_paths(data: dict, fn: Callable[[str], str]) -> dict:
    """Apply `fn` to every file path in a serialized cut, recording or rejection (in place).

    Paths live in ``recording.sources[*].source`` (type ``file``), in Lhotse array manifests
    stored in ``custom`` (``storage_path``), in ``features.storage_path`` and, for mixed cuts,
    in each track's cut. A rejection's ``item`` is a cut.
    """
    if not isinstance(data, dict):
        return data
    recording = data.get("recording") if isinstance(data.get("recording"), dict) else None
    if recording is None and "sources" in data:
        recording = data
    if recording is not None:
        for source in recording.get("sources") or []:
            if isinstance(source, dict) and source.get("type") == "file":
                source["source"] = fn(source["source"])
    for holder in (data.get("custom"), {"features": data.get("features")}):
        if isinstance(holder, dict):
            for value in holder.values():
                if isinstance(value, dict) and "storage_type" in value and "storage_path" in value:
                    value["storage_path"] = fn(value["storage_path"])
    for track in data.get("tracks") or []:
        if isinstance(track, dict):
            map_paths(track.get("cut"), fn)
    if isinstance(data.get("item"), dict):
        map_paths(data["item"], fn)
    return data


def portable(item, root: Path) -> dict:
    """`item` (a Lhotse object or dict) serialized with its paths relative to `root`."""
    data = item if isinstance(item, dict) else item.to_dict()
    data = json.loads(json.dumps(data)) if isinstance(item, dict) else data  # never edit the caller's dict
    return map_paths(data, lambda p: relativize(p, root))


def manifest_kind(data: dict) -> str:
    """'cut', 'recording', 'supervision', 'quarantine' or 'unknown' for one manifest line."""
    if data.get("type") in CUT_TYPES:
        return "cut"
    if "sources" in data and "sampling_rate" in data:
        return "recording"
    if {"recording_id", "start", "duration"} <= data.keys():
        return "supervision"
    if {"stage", "reason"} <= data.keys():
        return "quarantine"
    return "unknown"


KIND_NAMES = {"recording": "a recordings manifest (Lhotse RecordingSet)",
              "supervision": "a supervisions manifest (Lhotse SupervisionSet)",
              "quarantine": "a quarantine list (inputs a stage rejected, with reasons)",
              "unknown": "not a Lhotse cut"}


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _is_int(value) -> bool:
    return (isinstance(value, int) and not isinstance(value, bool)) or (isinstance(value, float) and value.is_integer())


# (field, test, what it must be) for the parts of a cut that Lhotse computes with
_CUT_FIELDS = [
    (("id",), lambda v: isinstance(v, str) and bool(v), "non-empty text"),
    (("start",), _is_number, "a number"),
    (("duration",), _is_number, "a number"),
    # null is no channel: Lhotse reads it, then writes the cut without the field it requires
    (("channel",), lambda v: _is_int(v) or (isinstance(v, list) and bool(v) and all(map(_is_int, v))),
     "a channel index or a list of them"),
    (("custom",), lambda v: v is None or isinstance(v, dict), "an object"),
    (("supervisions",), lambda v: v is None or isinstance(v, list), "a list"),
    (("recording",), lambda v: v is None or isinstance(v, dict), "an object"),
    (("recording", "id"), lambda v: isinstance(v, str) and bool(v), "non-empty text"),
    (("recording", "sampling_rate"), lambda v: _is_int(v) and v > 0, "a positive integer"),
    (("recording", "num_samples"), lambda v: _is_int(v) and v >= 0, "a non-negative integer"),
    (("recording", "duration"), _is_number, "a number"),
    (("recording", "sources"), lambda v: isinstance(v, list) and all(isinstance(s, dict) for s in v) and v,
     "a list of sources"),
]


def check_cut_fields(data: dict, path: Path, number: int) -> None:
    """Raise a `ManifestError` naming the first structural field of a cut with the wrong type."""
    for keys, test, what in _CUT_FIELDS:
        value, holder = data, None
        for key in keys:
            holder = value
            value = value.get(key) if isinstance(value, dict) else None
        if isinstance(holder, dict) and keys[-1] in holder and not test(value):
            raise ManifestError(f"{path}:{number}: field {'.'.join(keys)} must be {what}, got {value!r}"[:300])
    for source in (data.get("recording") or {}).get("sources") or []:
        if not isinstance(source.get("source"), str) or not isinstance(source.get("type"), str):
            raise ManifestError(f"{path}:{number}: field recording.sources needs 'type' and 'source' as text")


def to_cut(data: dict, path: Path, number: int):
    """Deserialize one line as a cut, or raise a `ManifestError` saying what the line is."""

    kind = manifest_kind(data)
    if kind != "cut":
        raise ManifestError(f"{path}:{number}: this line is {KIND_NAMES[kind]}; expected a cuts manifest")
    check_cut_fields(data, path, number)
    try:
        return deserialize_item(data)
    except Exception as exc:
        raise ManifestError(f"{path}:{number}: not a valid {data.get('type')} ({type(exc).__name__}: {exc})"[:400]) \
            from None


class ManifestCuts:
    """A lazy, re-iterable view of the cuts of a manifest file, paths resolved against its folder."""

    def __init__(self, path: str | os.PathLike, root: str | os.PathLike | None = None) -> None:
        self.path = Path(path)
        self.root = Path(root).resolve() if root is not None else self.path.resolve().parent

    def __iter__(self):
        root = self.root
        for number, data in iter_json_lines(self.path):
            yield to_cut(map_paths(data, lambda p: resolve(p, root)), self.path, number)

    def __len__(self) -> int:
        return count_lines(self.path)


def read_cuts(path: str | os.PathLike, root: str | os.PathLike | None = None):
    """The cuts of a manifest as a lazy Lhotse `CutSet` (empty for an empty file).

    :param root: the folder relative paths resolve against (default: the manifest's own; a
        stage's partial output resolves against the folder of its final manifest).
    """

    return CutSet(ManifestCuts(path, root))


def read_items(path: str | os.PathLike) -> Iterator[dict]:
    """Any JSONL(.gz) manifest's objects (recordings, quarantine rows, ...) with paths resolved."""
    root = Path(path).resolve().parent
    for _, data in iter_json_lines(path):
        yield map_paths(data, lambda p: resolve(p, root))

"""One rule for every path an artifact records (encode info, checkpoint, run config, reference).

Recording. A local file or folder is written *relative to the folder of the artifact that records
it*, with its content digest (`path_digest`) beside it. Relative, not absolute, because the things
an artifact names usually travel with it: a project folder (manifests, models, runs) copied to
another machine or published keeps working, as Lhotse manifests do with their audio. A Hub id is
written as it was given, with no digest: the digest's presence is what marks a path as local.

Reading. A recorded local path is resolved against the artifact's folder, never the working
directory, and a resolved local path that is missing is never handed to a loader (a loader would
take ``models/t5`` for a Hub id and ask the network): `require` raises a one-line `StageError`
naming the artifact, the field, the recorded path, its digest and the option that overrides it.
Artifacts written before digests were recorded are read the same way when the path exists next to
them or starts with ``.`` or ``/``; anything else is taken for the Hub id it looks like.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from scoreaware.core.errors import StageError
from scoreaware.core.files import content_digest, is_url
from scoreaware.core.manifests import relativize

_DIGESTS: dict[tuple, str] = {}  # (path, size, mtime_ns) of every file → the folder's digest, per process


def path_digest(path: str | os.PathLike) -> str:
    """sha256 of a file's content, or of a folder's files (relative name and content, sorted).

    Cached per process on every file's size and mtime, so a checkpoint save does not rehash models."""
    path = Path(path)
    if path.is_file():
        return content_digest(path)
    files = sorted(p for p in path.rglob("*") if p.is_file() and not p.name.startswith("."))
    key = (str(path.resolve()), *((str(p), p.stat().st_size, p.stat().st_mtime_ns) for p in files))
    if key not in _DIGESTS:
        digest = hashlib.sha256()
        for file in files:
            digest.update(file.relative_to(path).as_posix().encode() + b"\0" + content_digest(file).encode())
        _DIGESTS[key] = digest.hexdigest()
    return _DIGESTS[key]


def record(value: str, folder: str | os.PathLike) -> tuple[str, str | None]:
    """(what to write, its digest or None) for `value` as given now (a local path is read from the
    working directory, where the user typed it) in an artifact that lives in `folder`."""
    if not value or is_url(value) or not os.path.exists(value):
        return value, None  # a Hub id (or nothing)
    return relativize(value, Path(folder).resolve()), path_digest(value)


def locate(value: str, folder: str | os.PathLike, local: bool = False) -> str:
    """The absolute path a recorded local `value` names (whether or not it is there), or `value`
    itself when it is a Hub id (`local`: recorded as local, with a digest). Never resolved against
    the working directory."""
    if not value or is_url(value):
        return value
    candidate = os.path.normpath(os.path.join(Path(folder).resolve(), value))
    looks_local = local or os.path.isabs(value) or value.startswith(".") or os.path.exists(candidate)
    return candidate if looks_local else value


def is_missing_local(value: str) -> bool:
    """True for a located local path that is not there (a Hub id never is)."""
    return bool(value) and os.path.isabs(value) and not os.path.exists(value)


def require(value: str, *, artifact: str | os.PathLike, field: str, recorded: str | None = None,
            digest: str | None = None, override: str | None = None) -> str:
    """`value` (a located path or a Hub id), or a `StageError` when it is a local path that is missing."""
    if is_missing_local(value):
        raise StageError(missing_message(artifact, field, recorded or value, value, digest, override))
    return value


def missing_message(artifact, field: str, recorded: str, looked: str, digest: str | None,
                    override: str | None) -> str:
    digest_text = f", sha256 {digest[:12]}…" if digest else ""
    way_out = f"; pass {override} with where it is now" if override else "; restore it there"
    where = f"the local path {looked}"
    if recorded != looked:
        where = f"the local path {recorded!r} (from its folder: {looked})"
    return f"{artifact}: {field} names {where}{digest_text}, which is missing{way_out}"

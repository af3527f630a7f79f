"""Small file helpers every layer uses: atomic text writes, JSON-lines reading and writing
(one reader, with line numbers), line counts, digests."""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import re
import sys
import zlib
from collections.abc import Iterator
from pathlib import Path

from scoreaware.core.errors import ManifestError

Pathlike = str | os.PathLike


# a plain file name: no separator, no leading dot (Lhotse files array keys under their first three
# characters, and a dot-folder is hidden), no "..", at most 200 characters
SAFE_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]{0,199}")



def is_url(value: str) -> bool:
    """A URL (``https://…``, ``s3://…``) rather than a path; here, not in `core.locations`, so
    modules that `--help` imports can ask without importing lhotse."""
    return "://" in value

def safe_name(text: str, fallback: str = "id") -> str:
    """A file name for `text` that stays inside its folder: `text` itself when it is a plain
    name, else a readable prefix plus a digest (ids come from data: ``../../x`` or ``/etc/x``
    must never leave the folder, and two different ids never share a name)."""
    if SAFE_NAME.fullmatch(text) and ".." not in text:
        return text
    readable = re.sub(r"[^A-Za-z0-9_-]+", "_", text).strip("_")[:40] or fallback
    return f"{readable}-{hashlib.sha1(text.encode()).hexdigest()[:16]}"


def file_digest(path: Pathlike, algorithm: str = "sha256") -> str:
    """Hex digest of a file, read in 1 MiB chunks."""
    digest = hashlib.new(algorithm)
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def content_digest(path: Pathlike) -> str:
    """sha256 of a file's content, decompressed when it is gzip: equal for the same lines however
    often (and whenever) they were recompressed (a gzip header records the time of writing)."""
    digest = hashlib.sha256()
    opener = gzip.open if str(path).endswith(".gz") else open
    try:
        with opener(path, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                digest.update(chunk)
    except (gzip.BadGzipFile, EOFError, zlib.error) as exc:  # a .gz that is not one, or is cut short
        raise ManifestError(f"{path}: not a readable gzip file ({type(exc).__name__}: {exc}); "
                            "was it truncated, or written without compression?") from None
    return digest.hexdigest()


def atomic_write_text(path: Pathlike, text: str) -> None:
    """Write `text` to `path` through a temporary file and a rename."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def save_figure(fig, path: Pathlike, dpi: int = 110) -> Path:
    """A matplotlib figure laid out, written to `path` (PNG) through a temporary file and a
    rename, and closed; returns `path`."""
    import matplotlib.pyplot as plt  # heavy: only the commands that plot need it

    path = Path(path)
    tmp = path.with_name(f".{path.stem}.tmp.png")
    fig.tight_layout()
    fig.savefig(tmp, dpi=dpi)
    plt.close(fig)
    os.replace(tmp, path)
    return path


def repair_jsonl_tail(path: Path) -> int:
    """Cut a torn last line (a write killed midway) off `path`; returns bytes removed."""
    size = path.stat().st_size
    with open(path, "rb+") as f:
        end = size
        while end > 0:  # scan backwards in 64 KiB chunks for the last newline
            begin = max(0, end - (1 << 16))
            f.seek(begin)
            newline = f.read(end - begin).rfind(b"\n")
            if newline >= 0:
                end = begin + newline + 1
                break
            end = begin
        if end < size:
            f.truncate(end)
        return size - end


def count_lines(path: Pathlike) -> int:
    """Number of JSONL items in a (possibly gzipped) manifest, without parsing them."""
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "rb") as f:
        return sum(1 for line in f if line.strip())


def read_jsonl(path: Pathlike) -> Iterator[dict]:
    """The objects of a JSONL(.gz) file (`iter_json_lines` without the line numbers)."""
    for _, data in iter_json_lines(path):
        yield data


def iter_json_lines(path: str | os.PathLike) -> Iterator[tuple[int, dict]]:
    """(line number, object) for every non-blank line of a JSONL(.gz) file.

    :raises ManifestError: on the first line that is not UTF-8 JSON object, or when a gzip
        stream ends early (a copy or download cut off).
    """
    path = Path(path)
    opener = gzip.open if path.name.endswith(".gz") else open
    number = 0
    try:
        with opener(path, "rb") as f:
            for number, raw in enumerate(f, start=1):
                if not raw.strip():
                    continue
                yield number, parse_line(raw, path, number)
    except (EOFError, gzip.BadGzipFile, zlib.error) as exc:
        raise ManifestError(f"{path}:{number + 1}: the file ends early or is not valid gzip "
                            f"({type(exc).__name__}: {exc}); it was probably cut off while copying") from None


def iter_json_text(text: str, path: Pathlike) -> Iterator[tuple[int, dict]]:
    """(line number, object) for every non-blank line of JSON-lines text already decoded (metadata
    and prompt files, whose encodings their readers settle); errors as `iter_json_lines`."""
    for number, line in enumerate(text.splitlines(), start=1):
        if line.strip():
            yield number, parse_line(line, Path(path), number)


def parse_line(raw: bytes | str, path: Path, number: int) -> dict:
    """One JSON-lines line as a dict, or a `ManifestError` naming the file and line."""
    if isinstance(raw, bytes):
        try:
            raw = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ManifestError(f"{path}:{number}: not UTF-8 text (byte {exc.start} of the line)") from None
    data = loads_checked(raw, f"{path}:{number}", ManifestError)
    if not isinstance(data, dict):
        raise ManifestError(f"{path}:{number}: expected a JSON object, got {type(data).__name__}")
    return data


def loads_checked(text: str, where: str, error: type[Exception] = ValueError, invalid: str | None = None):
    """`json.loads` of text from a user's file, every way it can fail as one `error` naming `where`:
    invalid JSON, nesting deeper than Python's recursion limit, and a lone surrogate escape
    (``"\\ud800"``: not a character, so the value could never be written as UTF-8 again).
    `invalid` replaces the message of invalid JSON (the reader knows the likelier cause); a ``{line}``
    in `where` is filled with the line at fault (1 when the whole text is at fault)."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        at = where.replace("{line}", str(exc.lineno))
        raise error(f"{at}: {invalid or f'invalid JSON ({exc.msg} at column {exc.colno})'}") from None
    except RecursionError:
        where = where.replace("{line}", "1")
        raise error(f"{where}: JSON nested too deeply to read (deeper than {sys.getrecursionlimit()} levels)") from None
    where = where.replace("{line}", "1")
    if "\\u" in text and re.search(r"\\u[dD][89a-fA-F]", text):  # an escaped surrogate: is it one of a pair?
        try:
            json.dumps(data, ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError as exc:
            raise error(f"{where}: holds a lone surrogate escape (\\u{ord(exc.object[exc.start]):04x}), which is "
                        "not a character") from None
        except RecursionError:
            raise error(f"{where}: JSON nested too deeply to read") from None
    return data

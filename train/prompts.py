"""Prompt files in the formats people have: text lines, JSONL, the challenge's CSV, JSON lists.

* text: one prompt per non-blank line (ids ``0001``, ``0002``, ... by line);
* JSONL: ``{"prompt": ..., "id": ...}`` per line (``caption`` or ``text`` also name the prompt);
* CSV/TSV with a header holding ``prompt`` (or ``caption``/``text``) and optionally ``id``, as the
  challenge's ``dry-run_prompts.csv`` (``id,prompt``);
* JSON: a list of strings or of such objects, or an object mapping ids to prompts.

Errors name the file and the line (or item).
"""

from __future__ import annotations

import csv
import functools
import io
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from scoreaware.core.errors import ManifestError, StageError
from scoreaware.core.files import iter_json_text

TEXT_KEYS = ("prompt", "caption", "text")


class PromptError(StageError, ValueError):
    """A prompt file that cannot be read; the message starts with ``file:line:``."""


@dataclass(frozen=True)
class Prompt:
    """One prompt: a stable id (pairs clips across checkpoints), its text and any extra fields."""

    id: str
    text: str
    extra: dict = field(default_factory=dict, compare=False)


def _prompt(row: dict, where: str, default_id: str) -> Prompt:
    text = next((row[k] for k in TEXT_KEYS if k in row), None)
    if not isinstance(text, str) or not text.strip():
        raise PromptError(f"{where}: needs a non-empty 'prompt' (or 'caption'/'text') field")
    control = next((c for c in text if ord(c) < 32 and c not in "\t\n\r"), None)
    if control is not None:
        raise PromptError(f"{where}: the prompt holds a control character (U+{ord(control):04X}, e.g. a NUL byte); "
                          "a text encoder would see it as text")
    ident = row.get("id", default_id)
    if isinstance(ident, (dict, list)) or ident in (None, ""):
        raise PromptError(f"{where}: the id must be text or a number")
    return Prompt(str(ident), text.strip(), {k: v for k, v in row.items() if k not in (*TEXT_KEYS, "id")})


def read_prompts(path: str | os.PathLike) -> list[Prompt]:
    """Every prompt of the file, in order; ids are unique."""
    path = Path(path)
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise PromptError(f"{path}:1: not UTF-8 (byte {exc.start})") from None
    head = text.lstrip()[:1]
    suffix = path.suffix.lower()
    if suffix == ".json" or (head == "[" and suffix not in (".jsonl", ".txt")):
        prompts = _from_json(path, text)
    elif suffix == ".jsonl" or head == "{":
        prompts = []
        try:
            for number, row in iter_json_text(text, path):
                prompts.append(_prompt(row, f"{path}:{number}", f"{len(prompts) + 1:04d}"))
        except ManifestError as exc:
            raise PromptError(str(exc)) from None
    elif suffix in (".csv", ".tsv"):
        prompts = _from_table(path, text, "\t" if suffix == ".tsv" else ",")
    else:
        lines = [(number, line) for number, line in enumerate(text.splitlines(), start=1) if line.strip()]
        prompts = [_prompt({"prompt": line.strip()}, f"{path}:{number}", f"{i + 1:04d}")
                   for i, (number, line) in enumerate(lines)]
    if not prompts:
        raise PromptError(f"{path}:1: no prompts")
    seen: dict[str, int] = {}
    for index, prompt in enumerate(prompts):
        if prompt.id in seen:
            raise PromptError(f"{path}: prompt id {prompt.id!r} is used twice (prompts {seen[prompt.id] + 1} and "
                              f"{index + 1})")
        seen[prompt.id] = index
    return prompts


def _unique_keys(path: Path, pairs: list[tuple[str, object]]) -> dict:
    """A JSON object whose keys are unique: json.loads keeps the last of two equal keys, which
    silently drops a prompt of an {id: prompt} object."""
    seen = set()
    for key, _ in pairs:
        if key in seen:
            raise PromptError(f"{path}: the key {key!r} appears twice in one JSON object (one prompt would be lost)")
        seen.add(key)
    return dict(pairs)


def _from_json(path: Path, text: str) -> list[Prompt]:
    try:
        data = json.loads(text, object_pairs_hook=functools.partial(_unique_keys, path))
    except json.JSONDecodeError as exc:
        raise PromptError(f"{path}:{exc.lineno}: invalid JSON ({exc.msg})") from None
    if isinstance(data, dict):
        data = [{"id": k, "prompt": v} for k, v in data.items()]
    if not isinstance(data, list):
        raise PromptError(f"{path}:1: expected a list of prompts")
    prompts = []
    for index, item in enumerate(data):
        where = f"{path}:1: item {index}"
        if isinstance(item, str):
            item = {"prompt": item}
        if not isinstance(item, dict):
            raise PromptError(f"{where}: expected a string or an object")
        prompts.append(_prompt(item, where, f"{index + 1:04d}"))
    return prompts


def _from_table(path: Path, text: str, delimiter: str) -> list[Prompt]:
    csv.field_size_limit(max(csv.field_size_limit(), len(text) + 1))  # in memory already: no 128 KiB cap
    reader = csv.DictReader(io.StringIO(text, newline=""), delimiter=delimiter)
    if not reader.fieldnames or not set(TEXT_KEYS) & {f.strip() for f in reader.fieldnames}:
        raise PromptError(f"{path}:1: the header needs a 'prompt' (or 'caption'/'text') column, got "
                          f"{reader.fieldnames}")
    prompts = []
    try:
        for row in reader:
            if None in row:  # DictReader's restkey: more fields than the header names
                raise PromptError(f"{path}:{reader.line_num}: {len(reader.fieldnames) + len(row[None])} fields where "
                                  f"the header has {len(reader.fieldnames)}; quote a prompt that holds "
                                  f"{'a comma' if delimiter == ',' else 'a tab'}")
            row = {(k or "").strip(): v for k, v in row.items()}
            prompts.append(_prompt(row, f"{path}:{reader.line_num}", f"{len(prompts) + 1:04d}"))
    except csv.Error as exc:
        raise PromptError(f"{path}:{reader.line_num}: not a readable table row ({exc})") from None
    return prompts

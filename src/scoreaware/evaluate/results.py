"""Reading what `eval score` left in a run's ``eval/`` folder, checked before anything computes
with it: ``scores.json`` against a pydantic model of the fields `eval compare` and `experiment`
read, ``clips.csv`` row by row, ``generation.json`` as an object. A damaged or hand-edited file
is one error naming the file and the field or line, never a KeyError deep in a table.
"""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, FiniteFloat, NonNegativeInt, ValidationError, field_validator

from scoreaware.evaluate.embeddings import EmbeddingError
from scoreaware.schemas.fields import CLAP_SCORE, PROMPT_ID, REWARD

SCORES_FORMAT = "scoreaware.scores/1"
CLIP_COLUMNS = ["id", PROMPT_ID, "seed", "prompt", CLAP_SCORE, REWARD]

Interval = tuple[FiniteFloat, FiniteFloat] | None


class _Part(BaseModel):
    model_config = ConfigDict(extra="allow")  # newer writers may add fields; these are the ones read


class _FadMetric(_Part):
    fad: FiniteFloat | None
    n: NonNegativeInt
    ci: Interval  # null when there were too few prompts for one


class _MeanMetric(_Part):
    mean: FiniteFloat | None
    ci: Interval  # null when there were too few prompts for one


class _Metrics(_Part):
    fad_clap: _FadMetric
    clap_score: _MeanMetric
    reward: _MeanMetric | None = None


class _Reference(_Part):
    path: str
    sha256: str


class _Fingerprints(_Part):
    clap: dict[str, Any]


class _Manifests(_Part):
    clap: str

    @field_validator("clap")
    @classmethod
    def _a_file_of_the_folder(cls, value: str) -> str:
        # names a file beside scores.json: never a path out of the run (it comes from a file)
        if not value or Path(value).name != value or value in (".", ".."):
            raise ValueError(f"must name a file in the eval folder, not {value!r}")
        return value


class ScoresFile(_Part):
    format: Literal["scoreaware.scores/1"]
    reference: _Reference
    fingerprints: _Fingerprints
    metrics: _Metrics
    manifests: _Manifests


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise EmbeddingError(f"{path}: not UTF-8 text") from None
    except json.JSONDecodeError as exc:
        raise EmbeddingError(f"{path}: not JSON ({exc.msg} at line {exc.lineno}); score the run again with "
                             "`eval score --overwrite`") from None


def read_scores(path: Path) -> dict:
    """``scores.json`` as a dict, after checking every field the comparisons read."""
    data = _read_json(path)
    if not isinstance(data, dict) or data.get("format") != SCORES_FORMAT:
        raise EmbeddingError(f"{path}: not a scoreaware scores file (no format {SCORES_FORMAT!r})")
    try:
        ScoresFile.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(part) for part in first["loc"])
        raise EmbeddingError(f"{path}: {field}: {first['msg']} (got {str(first.get('input'))[:40]!r}); score the run "
                             "again with `eval score --overwrite`") from None
    return data


def _number(text: str | None, where: str, column: str) -> float | None:
    if text in (None, ""):
        return None
    try:
        value = float(text)
    except ValueError:
        raise EmbeddingError(f"{where}: {column} {text[:20]!r} is not a number") from None
    if not math.isfinite(value):
        raise EmbeddingError(f"{where}: {column} is {text!r}, not a finite number")
    return value


def read_clips_csv(path: Path) -> list[dict]:
    """The per-clip rows of ``clips.csv`` (`CLIP_COLUMNS`), each (prompt_id, seed) once."""
    try:
        with open(path, newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f, strict=True)
            missing = [c for c in CLIP_COLUMNS if c not in (reader.fieldnames or [])]
            if missing:
                raise EmbeddingError(f"{path}: no column {', '.join(missing)} (has {reader.fieldnames})")
            rows = list(reader)
    except (UnicodeDecodeError, csv.Error) as exc:
        raise EmbeddingError(f"{path}: not a readable CSV table ({exc})") from None
    seen: dict[tuple[str, int], int] = {}
    for line, row in enumerate(rows, start=2):
        where = f"{path}:{line}"
        if None in row or any(row.get(c) is None for c in CLIP_COLUMNS):
            raise EmbeddingError(f"{where}: {len(row) - (None in row)} cells where the header has {len(CLIP_COLUMNS)}")
        for column in ("id", PROMPT_ID):
            if not row[column]:
                raise EmbeddingError(f"{where}: {column} is empty")
        try:
            row["seed"] = int(row["seed"])
        except ValueError:
            raise EmbeddingError(f"{where}: seed {row['seed'][:20]!r} is not an integer") from None
        for column in (CLAP_SCORE, REWARD):
            row[column] = _number(row[column], where, column)
        key = (row[PROMPT_ID], row["seed"])
        if key in seen:
            raise EmbeddingError(f"{where}: prompt {key[0]} seed {key[1]} again (first at line {seen[key]})")
        seen[key] = line
    return rows


def read_generation(path: Path) -> dict:
    """``generation.json`` (the sampling settings `eval generate` recorded), or {} when absent."""
    if not path.is_file():
        return {}
    data = _read_json(path)
    if not isinstance(data, dict):
        raise EmbeddingError(f"{path}: not a JSON object of generation settings")
    return data

"""Validate a manifest file against a stage schema and report every failing row and field.

The file is read line by line (so a torn or non-JSON line is reported with its line number
instead of aborting the run), turned into table chunks and checked with pandera's lazy
validation. pandera stops value checks on a column when some of its values cannot be coerced;
so a second pass blanks those values and checks the rest, and the report holds both.
"""

from __future__ import annotations

import gzip
import json
import os
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import pandera.pandas as pa

from schemas.models import infer_stage, schema_for
from schemas.tables import cut_to_row

REPORT_COLUMNS = ["row", "id", "column", "check", "value"]


@dataclass
class ValidationReport:
    """Outcome of validating one manifest."""

    path: str
    stage: str
    rows: int = 0
    failures: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=REPORT_COLUMNS))

    @property
    def ok(self) -> bool:
        return self.failures.empty

    @property
    def failing_rows(self) -> list[int]:
        return sorted({int(r) for r in self.failures["row"].dropna()})

    def format(self, limit: int | None = None) -> str:
        """Human-readable report: one line per failing (row, field)."""
        schema = schema_for(self.stage).__name__
        if self.ok:
            return f"✓ {self.path}: {self.rows} rows satisfy {schema} (stage {self.stage})"
        shown = self.failures if limit is None else self.failures.head(limit)
        lines = [
            f"✗ {self.path}: {len(self.failures)} problems in {len(self.failing_rows)} of "
            f"{self.rows} rows against {schema} (stage {self.stage})"
        ]
        for rec in shown.itertuples(index=False):
            where = "all rows" if pd.isna(rec.row) else f"row {int(rec.row)}"
            ident = "" if rec.id is None or pd.isna(rec.id) else f"  id={rec.id}"
            lines.append(f"  {where}{ident}  {rec.column}: {rec.check} (value: {rec.value!r})")
        if limit is not None and len(self.failures) > limit:
            lines.append(f"  ... and {len(self.failures) - limit} more")
        return "\n".join(lines)


def _iter_lines(path: Path) -> Iterator[tuple[int, str]]:
    opener = gzip.open if path.name.endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8", errors="replace") as f:
        for number, line in enumerate(f, start=1):
            if line.strip():
                yield number, line


def _chunks(path: Path, chunk_size: int, parse_failures: list[dict], counter: dict):
    """Yield lists of table rows from the manifest; unparsable lines go to `parse_failures`."""
    from lhotse.serialization import deserialize_item

    rows: list[dict] = []
    row_number = 0
    for line_number, line in _iter_lines(path):
        try:
            data = json.loads(line)
            cut = deserialize_item(data)
            row = cut_to_row(cut)
        except Exception as exc:  # report the line, keep validating the others
            parse_failures.append(
                {"row": row_number, "id": None, "column": f"line {line_number}",
                 "check": "parse", "value": f"{type(exc).__name__}: {exc}"[:200]}
            )
            row_number += 1
            counter["rows"] = row_number
            continue
        row["_row"] = row_number
        rows.append(row)
        row_number += 1
        counter["rows"] = row_number
        if len(rows) >= chunk_size:
            yield rows
            rows = []
    if rows:
        yield rows


def _check_frame(model: type[pa.DataFrameModel], frame: pd.DataFrame) -> pd.DataFrame:
    """pandera failure cases of `frame` (index = table position), both passes merged."""
    def run(df: pd.DataFrame) -> pd.DataFrame:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                model.validate(df, lazy=True)
        except pa.errors.SchemaErrors as err:
            return err.failure_cases.copy()
        return pd.DataFrame(columns=["column", "check", "failure_case", "index"])

    first = run(frame)
    coerce = first[first["check"].astype(str).str.startswith("coerce_dtype")]
    if coerce.empty:
        return first
    cleaned = frame.copy()
    blanked: set[tuple[str, int]] = set()
    for rec in coerce.itertuples(index=False):
        cleaned[rec.column] = cleaned[rec.column].astype(object)
        cleaned.loc[rec.index, rec.column] = None
        blanked.add((rec.column, rec.index))
    second = run(cleaned)
    keep = [
        not (str(r.check) == "not_nullable" and (r.column, r.index) in blanked)
        and not str(r.check).startswith(("coerce_dtype", "dtype("))
        for r in second.itertuples(index=False)
    ]
    return pd.concat([coerce, second[keep]], ignore_index=True)


def validate_manifest(
    path: str | os.PathLike, stage: str | None = None, chunk_size: int = 50_000
) -> ValidationReport:
    """Validate a cuts manifest against the schema of `stage` (inferred when None).

    :param path: ``*.jsonl`` or ``*.jsonl.gz`` manifest of cuts.
    :param stage: a key of `schemas.models.SCHEMAS`; None reads the sidecar, else the columns.
    :param chunk_size: rows per pandera call; memory stays bounded by it.
    """
    path = Path(path)
    stage = stage or _stage_from_sidecar(path)
    parse_failures: list[dict] = []
    failures: list[pd.DataFrame] = []
    seen_ids: dict[str, int] = {}
    counter = {"rows": 0}
    for chunk in _chunks(path, chunk_size, parse_failures, counter):
        frame = pd.DataFrame.from_records(chunk)
        frame.index = pd.Index(frame.pop("_row"))
        if stage is None:
            stage = infer_stage(set(frame.columns))
        found = _check_frame(schema_for(stage), frame)
        # uniqueness across chunks (pandera sees one chunk at a time)
        for position, ident in zip(frame.index, frame["id"]):
            if ident in seen_ids and seen_ids[ident] not in frame.index:
                found = pd.concat([found, pd.DataFrame([{
                    "column": "id", "check": "unique across file", "failure_case": ident, "index": position}])])
            seen_ids.setdefault(ident, position)
        if not found.empty:
            found["id"] = [frame["id"].get(i) if i is not None and i in frame.index else None
                           for i in found["index"]]
            failures.append(found.rename(columns={"index": "row", "failure_case": "value"}))
    if parse_failures:
        failures.append(pd.DataFrame(parse_failures))
    report = ValidationReport(path=str(path), stage=stage or "ingest", rows=counter["rows"])
    if failures:
        merged = pd.concat(failures, ignore_index=True)[REPORT_COLUMNS]
        report.failures = merged.sort_values("row", na_position="first", kind="stable").reset_index(drop=True)
    return report


def _stage_from_sidecar(path: Path) -> str | None:
    from curate.io import read_provenance

    try:
        sidecar = read_provenance(path)
    except Exception:
        return None
    stage = (sidecar or {}).get("stage")
    from schemas.models import SCHEMAS

    return stage if stage in SCHEMAS else None

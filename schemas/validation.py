"""Validate a manifest file against a stage schema and report every failing line and field.

The file is read line by line (so a torn or non-JSON line, or a gzip stream cut off, is
reported with its line number instead of aborting the run), turned into table chunks and
checked with pandera's lazy validation. pandera stops value checks on a column when some of
its values cannot be coerced; so a second pass blanks those values and checks the rest, and
the report holds both.

Which schema: an explicit stage's model; else the lineage recorded in the manifest's sidecar
(every stage that made it, so columns an earlier stage guaranteed are required too); else the
stage inferred from the columns.
"""

from __future__ import annotations

import gzip
import json
import os
import warnings
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import pandera.pandas as pa

from scoreaware.core.errors import ManifestError, StageError
from scoreaware.core.files import parse_line
from scoreaware.core.manifests import KIND_NAMES, manifest_kind, to_cut
from scoreaware.schemas.models import SCHEMAS, infer_stage, schema_for, schema_for_lineage
from scoreaware.schemas.tables import cut_to_row

REPORT_COLUMNS = ["row", "line", "id", "column", "check", "value"]


class ManifestKindError(StageError, ValueError):
    """The file is a manifest, but not of cuts (recordings, supervisions, a quarantine list)."""


@dataclass
class ValidationReport:
    """Outcome of validating one manifest."""

    path: str
    stage: str
    rows: int = 0
    schema: str = ""
    failures: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=REPORT_COLUMNS))

    @property
    def ok(self) -> bool:
        return self.failures.empty

    @property
    def failing_rows(self) -> list[int]:
        return sorted({int(r) for r in self.failures["row"].dropna()})

    def format(self, limit: int | None = None) -> str:
        """Human-readable report: one line per failing (line, field)."""
        schema = self.schema or schema_for(self.stage).__name__
        if self.ok:
            return f"✓ {self.path}: {self.rows} rows satisfy {schema}"
        shown = self.failures if limit is None else self.failures.head(limit)
        lines = [
            f"✗ {self.path}: {len(self.failures)} problems in {len(self.failing_rows)} of "
            f"{self.rows} rows against {schema}"
        ]
        for rec in shown.itertuples(index=False):
            where = "all lines" if pd.isna(rec.line) else f"line {int(rec.line)}"
            ident = "" if rec.id is None or pd.isna(rec.id) else f"  id={rec.id}"
            lines.append(f"  {where}{ident}  {rec.column}: {rec.check} (value: {rec.value!r})")
        if limit is not None and len(self.failures) > limit:
            lines.append(f"  ... and {len(self.failures) - limit} more")
        return "\n".join(lines)


def _chunks(path: Path, chunk_size: int, parse_failures: list[dict], counter: dict):
    """Yield lists of table rows from the manifest; unreadable lines go to `parse_failures`."""

    rows: list[dict] = []
    row_number = 0

    def failure(line: int, check: str, message: str) -> None:
        parse_failures.append({"row": row_number, "line": line, "id": None, "column": "(line)", "check": check,
                               "value": message[:200]})

    for line_number, raw in _raw_lines(path, parse_failures):
        try:
            data = parse_line(raw, path, line_number)
            if row_number == 0 and manifest_kind(data) not in ("cut", "unknown"):
                raise ManifestKindError(f"{path} is {KIND_NAMES[manifest_kind(data)]}, not a cuts manifest; "
                                        "validate checks cut manifests (the stage's main output)")
            row = cut_to_row(to_cut(data, path, line_number))
        except ManifestKindError:
            raise
        except ManifestError as exc:
            failure(line_number, "parse", str(exc).split(": ", 1)[-1])
            row_number += 1
            counter["rows"] = row_number
            continue
        except (TypeError, ValueError, AttributeError, KeyError, IndexError) as exc:  # a cut of malformed parts
            failure(line_number, "parse", f"not a valid cut ({type(exc).__name__}: {exc})")
            row_number += 1
            counter["rows"] = row_number
            continue
        row["_row"], row["_line"] = row_number, line_number
        rows.append(row)
        row_number += 1
        counter["rows"] = row_number
        if len(rows) >= chunk_size:
            yield rows
            rows = []
    if rows:
        yield rows


def _raw_lines(path: Path, parse_failures: list[dict]) -> Iterator[tuple[int, bytes]]:
    """(line number, bytes) of non-blank lines; a gzip stream that ends early is one failure."""

    opener = gzip.open if path.name.endswith(".gz") else open
    number = 0
    try:
        with opener(path, "rb") as f:
            for number, raw in enumerate(f, start=1):
                if raw.strip():
                    yield number, raw
    except (EOFError, gzip.BadGzipFile, zlib.error) as exc:
        parse_failures.append({"row": None, "line": number + 1, "id": None, "column": "(file)", "check": "truncated",
                               "value": f"the file ends early or is not valid gzip ({exc})"[:200]})


def _check_frame(schema, frame: pd.DataFrame) -> pd.DataFrame:
    """pandera failure cases of `frame` (index = table position), both passes merged."""
    def run(df: pd.DataFrame) -> pd.DataFrame:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                schema.validate(df, lazy=True)
        except pa.errors.SchemaErrors as err:
            return err.failure_cases.copy()
        return pd.DataFrame(columns=["column", "check", "failure_case", "index"])

    first = run(frame)
    coerce = first[first["check"].astype(str).str.startswith("coerce_dtype")]
    if coerce.empty:
        return first
    coerce = _locate_coerce_failures(schema, frame, coerce)
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


def _locate_coerce_failures(schema, frame: pd.DataFrame, coerce: pd.DataFrame) -> pd.DataFrame:
    """Coercion failures pandera could not pin to a row (e.g. a list among numbers): try each
    value of the column alone and report the ones that fail, by row."""
    located = [coerce[coerce["index"].notna()]]
    for column in coerce.loc[coerce["index"].isna(), "column"].unique():
        dtype = schema.columns[column].dtype
        bad = []
        for index, value in frame[column].items():
            try:
                dtype.coerce(pd.Series([value], dtype=object))
            except Exception:
                bad.append({"column": column, "check": f"coerce_dtype('{dtype}')", "failure_case": repr(value)[:80],
                            "index": index})
        located.append(pd.DataFrame(bad, columns=["column", "check", "failure_case", "index"]))
    return pd.concat(located, ignore_index=True)


def validate_manifest(
    path: str | os.PathLike, stage: str | None = None, chunk_size: int = 50_000, lineage: list[str] | None = None
) -> ValidationReport:
    """Validate a cuts manifest; report every failing line and field.

    :param path: ``*.jsonl`` or ``*.jsonl.gz`` manifest of cuts.
    :param stage: a key of `schemas.models.SCHEMAS`; None uses `lineage`, else the sidecar's
        lineage, else the stage inferred from the columns.
    :param chunk_size: rows per pandera call; memory stays bounded by it.
    :param lineage: the stages that made the manifest, oldest first (see `schema_for_lineage`).
    :raises ManifestKindError: for recordings/supervisions manifests and quarantine lists.
    """
    path = Path(path)
    schema = name = None
    if stage is not None:
        model = schema_for(stage)
        schema, name = model.to_schema(), model.__name__
    else:
        lineage = lineage or _lineage_from_sidecar(path)
        if lineage:
            schema, name = schema_for_lineage(lineage)
            stage = next((s for s in reversed(lineage) if s in SCHEMAS), "ingest")
    parse_failures: list[dict] = []
    failures: list[pd.DataFrame] = []
    seen_ids: dict[str, int] = {}
    counter = {"rows": 0}
    for chunk in _chunks(path, chunk_size, parse_failures, counter):
        frame = pd.DataFrame.from_records(chunk)
        frame.index = pd.Index(frame.pop("_row"))
        lines = frame.pop("_line")
        if schema is None:
            stage = infer_stage(set(frame.columns))
            model = schema_for(stage)
            schema, name = model.to_schema(), model.__name__
        found = _check_frame(schema, frame)
        # uniqueness across chunks (pandera sees one chunk at a time)
        for position, ident in zip(frame.index, frame["id"]):
            if ident in seen_ids and seen_ids[ident] not in frame.index:
                found = pd.concat([found, pd.DataFrame([{
                    "column": "id", "check": "unique across file", "failure_case": ident, "index": position}])])
            seen_ids.setdefault(ident, position)
        if not found.empty:
            found["id"] = [frame["id"].get(i) if i is not None and i in frame.index else None
                           for i in found["index"]]
            found["line"] = [lines.get(i) if i is not None and i in lines.index else None for i in found["index"]]
            failures.append(found.rename(columns={"index": "row", "failure_case": "value"}))
    if parse_failures:
        failures.append(pd.DataFrame(parse_failures))
    stage = stage or "ingest"
    report = ValidationReport(path=str(path), stage=stage, rows=counter["rows"],
                              schema=name or schema_for(stage).__name__)
    if failures:
        merged = pd.concat(failures, ignore_index=True)[REPORT_COLUMNS]
        report.failures = merged.sort_values("line", na_position="first", kind="stable").reset_index(drop=True)
    return report


def _lineage_from_sidecar(path: Path) -> list[str] | None:
    sidecar_path = _sidecar(path)
    if sidecar_path is None or not sidecar_path.is_file():
        return None
    try:
        sidecar = json.loads(sidecar_path.read_text())
    except (OSError, ValueError):
        return None
    lineage = sidecar.get("lineage")
    if isinstance(lineage, list) and all(isinstance(s, str) for s in lineage):
        return lineage
    stage = sidecar.get("stage")
    return [stage] if stage in SCHEMAS else None


def _sidecar(path: Path) -> Path | None:
    name = path.name
    for suffix in (".jsonl.gz", ".jsonl"):
        if name.endswith(suffix):
            return path.with_name(name[: -len(suffix)] + ".provenance.json")
    return None


# ------------------------------------------------------------------------ input check
def check_input(path: str | os.PathLike, limit: int = 12):
    """Validate a stage's input manifest before the stage runs; raise naming line and field.

    The generic schema checks every column any stage reads (ids, timing, sampling rates,
    scores in range and numeric, tags as lists, ...). Returns the validation report.
    """
    try:
        report = validate_manifest(path, stage="ingest")
    except ManifestKindError as exc:
        raise ManifestError(str(exc)) from None
    if not report.ok:
        raise ManifestError(f"{path} cannot be used as input:\n" + report.format(limit=limit).split("\n", 1)[1]
                            + "\n(`scoreaware curate validate` lists every problem)")
    return report

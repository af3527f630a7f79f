import gzip
import json

import pandas as pd
import pytest
from click.testing import CliRunner
from lhotse import CutSet

from scoreaware.cli.main import cli
from scoreaware.core.manifests import read_cuts
from scoreaware.schemas.models import SCHEMAS, infer_stage
from scoreaware.schemas.tables import cut_to_row, cuts_to_table
from scoreaware.schemas.validation import validate_manifest
from scoreaware.testing.dummies import file_cut, tone, write_audio


@pytest.fixture
def good(tmp_path):
    path = write_audio(tmp_path / "a.flac", tone(1.0, channels=2))
    cuts = [
        file_cut(path, cut_id=f"c{i}", caption=f"clip {i}", tags=["genre---rock"], source_cut_id="a",
                 window_start=float(i), loudness_lufs=-14.0 - i, clap_score=0.1 * i)
        for i in range(4)
    ]
    out = tmp_path / "good.jsonl.gz"
    CutSet.from_cuts(cuts).to_file(out)
    return out


def rewrite(src, dst, edit):
    with gzip.open(src, "rt") as f:
        rows = [json.loads(line) for line in f]
    lines = edit(rows)
    with gzip.open(dst, "wt") as f:
        for line in lines:
            f.write(line if isinstance(line, str) else json.dumps(line))
            f.write("\n")
    return dst


def test_cut_to_row_flattens_custom_and_marks_arrays(good):
    cut = next(iter(read_cuts(good)))
    row = cut_to_row(cut)
    assert row["cut_type"] == "MultiCut" and row["num_channels"] == 2 and row["caption"] == "clip 0"
    assert list(cuts_to_table(read_cuts(good))["id"]) == ["c0", "c1", "c2", "c3"]


def test_good_manifest_passes_every_applicable_stage(good):
    for stage in ("ingest", "segment"):
        report = validate_manifest(good, stage=stage)
        assert report.ok, report.format()
        assert report.rows == 4
    assert not validate_manifest(good, stage="reward").ok  # no reward column
    clap = validate_manifest(good, stage="clap")  # a score without the stored embedding: not a clap output
    assert not clap.ok and "has_clap_audio_emb" in clap.format()


def test_bad_values_are_reported_with_rows_and_fields(good, tmp_path):
    def edit(rows):
        rows[0]["custom"]["loudness_lufs"] = float("nan")
        rows[1]["custom"]["clap_score"] = 1.5
        rows[2]["duration"] = "ten seconds"
        rows[2]["custom"]["tags"] = "rock"
        rows[3]["id"] = "c0"
        return [rows[0], rows[1], rows[2], "{this is not json", rows[3]]

    bad = rewrite(good, tmp_path / "bad.jsonl.gz", edit)
    report = validate_manifest(bad, stage="segment")
    assert not report.ok
    found = {(r.row, r.column, r.check) for r in report.failures.itertuples()}
    assert (0, "loudness_lufs", "not_nullable") in found
    assert (1, "clap_score", "less_than_or_equal_to(1.0)") in found
    assert (2, "(line)", "parse") in found  # a cut Lhotse cannot compute with: reported as the line
    assert "field duration must be a number, got 'ten seconds'" in report.format()
    assert (3, "(line)", "parse") in found
    assert (4, "id", "field_uniqueness") in found and (0, "id", "field_uniqueness") in found
    assert report.failing_rows == [0, 1, 2, 3, 4]
    text = report.format()
    assert "line 2  id=c1  clap_score" in text and "5 of 5 rows" in text  # lines of the file, counted from 1
    assert "line 4  (line): parse" in text and "line 5  id=c0  id: field_uniqueness" in text


def test_wrong_type_in_one_row_does_not_hide_range_errors_in_others(good, tmp_path):
    def edit(rows):
        rows[0]["custom"]["clap_score"] = "high"
        rows[3]["custom"]["clap_score"] = -3.0
        return rows

    report = validate_manifest(rewrite(good, tmp_path / "b.jsonl.gz", edit), stage="clap")
    found = {(r.row, r.check) for r in report.failures.itertuples() if r.column == "clap_score"}
    assert found == {(0, "coerce_dtype('float64')"), (3, "greater_than_or_equal_to(-1.0)")}


def test_uniqueness_is_checked_across_chunks(good, tmp_path):
    bad = rewrite(good, tmp_path / "dup.jsonl.gz", lambda rows: rows + [rows[0]])
    report = validate_manifest(bad, stage="segment", chunk_size=2)
    assert (4, "id") in {(r.row, r.column) for r in report.failures.itertuples()}


def test_stage_inference():
    assert infer_stage({"id", "window_start"}) == "segment"
    assert infer_stage({"id", "clap_score", "has_clap_audio_emb", "window_start"}) == "clap"
    assert infer_stage({"id", "clap_score", "window_start"}) == "segment"  # a score alone is not a clap output
    assert infer_stage({"id", "selection_rank", "clap_score"}) == "select"
    assert infer_stage({"id"}) == "ingest"
    assert set(SCHEMAS) == {"ingest", "segment", "clap", "reward", "caption", "select", "mixture", "caption_audio",
                            "caption_rewrite", "encode"}


def test_validate_cli_exit_codes(good, tmp_path):
    runner = CliRunner()
    ok = runner.invoke(cli, ["curate", "validate", str(good), "--stage", "segment"])
    assert ok.exit_code == 0 and "4 rows satisfy SegmentedCuts" in ok.output
    bad = rewrite(good, tmp_path / "bad.jsonl.gz", lambda rows: [{**rows[0], "duration": -1.0}])
    result = runner.invoke(cli, ["curate", "validate", str(bad)])
    assert result.exit_code == 1
    assert "line 1  id=c0  duration: greater_than(0)" in result.output
    missing = runner.invoke(cli, ["curate", "validate", str(tmp_path / "nope.jsonl.gz")])
    assert missing.exit_code == 2


def test_caption_schema_requires_non_blank_captions(good, tmp_path):
    def edit(rows):
        rows[0]["custom"]["caption"] = "   "
        del rows[1]["custom"]["caption"]
        rows[2]["custom"]["caption"] = None
        return rows

    report = validate_manifest(rewrite(good, tmp_path / "c.jsonl.gz", edit), stage="caption")
    assert report.failing_rows == [0, 1, 2]
    assert isinstance(report.failures, pd.DataFrame)

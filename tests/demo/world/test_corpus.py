"""The realistic world's corpus: works people wrote, rendered; exact labels, planted problems, determinism."""

from __future__ import annotations

import hashlib
import json
import re
from collections import Counter

import pytest
from click.testing import CliRunner

from scoreaware.cli.main import cli
from scoreaware.core.files import read_jsonl
from scoreaware.demo.world import catalog
from scoreaware.demo.world.corpus import make_corpus, plan_corpus
from scoreaware.demo.world.render import INSTRUMENTS, TEMPO_BANDS


def digest(root):
    files = sorted(p for p in root.rglob("*") if p.is_file())
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest() for p in files}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """12 clips × 6 s rendered through the command, one worker (the fixture other tests read)."""
    root = tmp_path_factory.mktemp("world") / "corpus"
    result = CliRunner().invoke(cli, ["demo", "make-corpus", str(root), "--clips", "12", "--duration", "6",
                                      "--seed", "3"])
    assert result.exit_code == 0, result.output
    return root


def test_same_seed_same_bytes_with_any_number_of_workers(corpus, tmp_path):
    make_corpus(tmp_path / "again", clips=12, duration=6.0, seed=3, workers=2)
    assert digest(corpus) == digest(tmp_path / "again")
    make_corpus(tmp_path / "other", clips=12, duration=6.0, seed=4)
    assert digest(corpus) != digest(tmp_path / "other")


def test_writes_the_four_metadata_layouts_and_the_truth(corpus):
    meta = corpus / "metadata"
    assert {p.name for p in meta.iterdir()} == {"autotagging.tsv", "captions.json", "tracks.csv",
                                                 "descriptions.jsonl"}
    truth = list(read_jsonl(corpus / "truth.jsonl"))
    assert len(truth) == 12
    for row in truth:
        for key in ("collection", "style", "composer", "meter", "key", "mode", "voices", "work_id", "instrument",
                    "program", "family", "tempo_band", "tempo_bpm", "dynamics", "velocity", "transpose", "license"):
            assert row[key] not in (None, ""), (key, row)
        assert row["mode"] in ("major", "minor") and re.fullmatch(r"[A-G](#|b)?", row["key"]), row
        low, high = TEMPO_BANDS[row["tempo_band"]]
        assert low <= row["tempo_bpm"] <= high
    assert {p.suffix for p in (corpus / "audio").rglob("*.*")} == {".mp3", ".flac", ".wav"}


def test_labels_span_instrument_families_bands_and_dynamics():
    specs = plan_corpus(36, seed=0)
    assert len({s.instrument for s in specs}) == 12 and len({s.program for s in specs}) == 12
    assert {s.family for s in specs} == {"keyboard", "plucked", "bowed", "wind", "brass", "voice"}
    assert {s.tempo_band for s in specs} == set(TEMPO_BANDS) and {s.dynamics for s in specs} == {"soft", "medium",
                                                                                                 "loud"}
    assert {s.collection for s in specs} == set(catalog.DEFAULT_COLLECTIONS)
    assert any(s.transpose for s in specs) and any(not s.transpose for s in specs)


def test_licenses_are_recorded_and_the_default_is_public_domain(corpus):
    truth = list(read_jsonl(corpus / "truth.jsonl"))
    assert {row["license"] for row in truth} == {catalog.PUBLIC_DOMAIN}
    tracks = (corpus / "metadata" / "tracks.csv").read_text().splitlines()
    assert tracks[0] == "id,path,license,artist,title" and all('"public domain"' in line for line in tracks[1:])
    assert all(json.loads(line)["license"] == catalog.PUBLIC_DOMAIN
               for line in (corpus / "metadata" / "descriptions.jsonl").read_text().splitlines())
    essen = plan_corpus(4, seed=0, collections=("essen",))
    assert {s.license for s in essen} == {catalog.ESSEN_LICENSE} and "non-commercial" in catalog.ESSEN_LICENSE


def test_no_work_is_in_both_splits():
    train = {w.id for w in catalog.works(split="train")}
    test = {w.id for w in catalog.works(split="test")}
    assert train and test and not train & test
    assert 0.15 < len(test) / (len(train) + len(test)) < 0.25
    assert {s.split for s in plan_corpus(40, seed=0)} == {"train"}
    assert {s.split for s in plan_corpus(40, seed=0, split="test")} == {"test"}


def test_planted_problems_are_present(corpus):
    truth = {row["id"]: row for row in read_jsonl(corpus / "truth.jsonl")}
    defects = Counter(row["defect"] for row in truth.values() if row["defect"])
    assert defects == {"near_silent": 1, "silent_middle": 1, "truncated": 1, "not_audio": 1}
    mismatched = [row for row in truth.values() if not row["caption_matches_audio"]]
    assert mismatched
    for row in mismatched:  # the caption names another instrument than the one playing
        named = [name for name, i in INSTRUMENTS.items() if any(w in row["caption"].lower() for w in i.words)]
        assert row["instrument"] not in named, row
    assert all(any(w in row["caption"].lower() for w in INSTRUMENTS[row["instrument"]].words)
               for row in truth.values() if row["caption_matches_audio"])
    assert [row for row in truth.values() if row["degradation"]]
    html = next(corpus / "audio" / row["path"] for row in truth.values() if row["defect"] == "not_audio")
    assert html.read_text().startswith("<html>")
    loud = [row["lufs"] for row in truth.values() if row["defect"] is None and row["lufs"] is not None]
    quiet = next(row for row in truth.values() if row["defect"] == "near_silent")
    assert quiet["lufs"] is None or quiet["lufs"] < min(loud) - 30


def test_ingest_and_segment_catch_the_broken_and_silent_files(corpus, tmp_path):
    meta = corpus / "metadata"
    runner = CliRunner()
    result = runner.invoke(cli, ["curate", "ingest", str(corpus / "audio"), "-m", str(meta / "autotagging.tsv"),
                                 "-m", str(meta / "captions.json"), "-m", str(meta / "tracks.csv"),
                                 "-m", str(meta / "descriptions.jsonl"), "-o", str(tmp_path / "ingest.jsonl.gz")])
    assert result.exit_code == 0, result.output
    truth = {row["id"]: row for row in read_jsonl(corpus / "truth.jsonl")}
    quarantine = next(tmp_path.glob("ingest.quarantine*"))
    reasons = {row["id"]: row["reason"] for row in read_jsonl(quarantine)}
    broken = {row["path"]: row["defect"] for row in truth.values() if row["defect"] in ("truncated", "not_audio")}
    assert {path: reasons.get(path) for path in broken} == {p: ("corrupt" if d == "truncated" else "not_audio")
                                                             for p, d in broken.items()}, reasons
    result = runner.invoke(cli, ["curate", "segment", str(tmp_path / "ingest.jsonl.gz"), "--window", "3", "--hop",
                                 "3", "-o", str(tmp_path / "segment.jsonl.gz")])
    assert result.exit_code == 0, result.output
    from scoreaware.core.manifests import read_cuts

    kept = {c.recording_id for c in read_cuts(tmp_path / "segment.jsonl.gz")}
    silent = next(rid for rid, row in truth.items() if row["defect"] == "near_silent")
    assert silent not in kept and kept, kept
    assert all(truth[rid]["license"] == catalog.PUBLIC_DOMAIN for rid in kept)
    # the license travels into the exported dataset and its card
    from scoreaware.curate.publish import export_dataset

    export_dataset(tmp_path / "segment.jsonl.gz", tmp_path / "dataset")
    card = (tmp_path / "dataset" / "README.md").read_text()
    assert "public domain" in card.lower(), card[:1500]
    front = card.split("---")[1]  # the Hub's licence id: 'public domain' has none, so 'other'
    assert "license:\n- other" in front or "license: other" in front or "- other" in front, front


def test_unknown_collection_is_a_clear_error(tmp_path):
    result = CliRunner().invoke(cli, ["demo", "make-corpus", str(tmp_path / "c"), "--collections", "bach,nope"])
    assert result.exit_code == 2 and "'nope'" in result.output and "Traceback" not in result.output

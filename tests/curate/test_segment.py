import gzip
import os
import subprocess
import sys

import numpy as np
import pytest
from click.testing import CliRunner

from scoreaware.cli.main import cli
from scoreaware.core.files import read_jsonl
from scoreaware.core.manifests import read_cuts
from scoreaware.core.provenance import read_provenance
from scoreaware.curate.stages.segment import SegmentConfig, segment, segment_cut
from scoreaware.testing.dummies import file_cut, tone, write_audio


@pytest.fixture(scope="module")
def segmented(ingested, tmp_path_factory):
    out = tmp_path_factory.mktemp("seg") / "segment.jsonl.gz"
    result = CliRunner().invoke(cli, ["curate", "segment", str(ingested), "-o", str(out), "--window", "4"])
    assert result.exit_code == 0, result.output
    return out


def test_windows_carry_ids_provenance_loudness_and_metadata(segmented, ingested):
    sources = {c.id: c for c in read_cuts(ingested)}
    windows = list(read_cuts(segmented))
    assert len({w.id for w in windows}) == len(windows)
    for w in windows:
        src = sources[w.custom["source_cut_id"]]
        start_ms = round(w.custom["window_start"] * 1000)
        assert w.id == f"{src.recording_id}_{start_ms}"
        assert w.start == pytest.approx(w.custom["window_start"])
        assert w.duration == pytest.approx(4.0)
        assert w.custom["caption"] == src.custom["caption"] and w.custom["tags"] == src.custom["tags"]
        assert -45 <= w.custom["loudness_lufs"] < 0
        audio = w.load_audio()
        assert audio.shape == (src.num_channels, 4 * src.sampling_rate)


def test_near_silent_windows_are_quarantined(segmented, tiny_corpus):
    truth = {r["id"]: r for r in read_jsonl(tiny_corpus / "truth.jsonl")}
    rejected = {r["id"]: r for r in read_jsonl(str(segmented).replace(".jsonl.gz", ".quarantine.jsonl.gz"))}
    silent = next(i for i, t in truth.items() if t["defect"] == "near_silent")
    middle = next(i for i, t in truth.items() if t["defect"] == "silent_middle")
    assert {f"{silent}_{ms}" for ms in (0, 4000, 8000)} <= set(rejected)
    assert f"{middle}_4000" in rejected  # the silent middle third (4-8 s of 12 s)
    assert f"{middle}_0" not in rejected and f"{middle}_8000" not in rejected
    assert all(r["reason"] == "near_silent" and "LUFS <" in r["detail"] for r in rejected.values())
    assert rejected[f"{middle}_4000"]["item"]["custom"]["source_cut_id"] == middle  # restorable
    kept = {c.id for c in read_cuts(segmented)}
    assert not kept & set(rejected)
    sidecar = read_provenance(segmented)
    assert sidecar["options"]["window"] == 4.0 and sidecar["summary"]["quarantined"] == len(rejected)


def test_short_sources_are_rejected_and_tails_follow_min_duration(tmp_path):
    short = file_cut(write_audio(tmp_path / "short.wav", tone(3.0)))
    long = file_cut(write_audio(tmp_path / "long.wav", tone(25.0)))
    outcomes = list(segment([short, long], SegmentConfig(window=10.0, min_duration=4.0), workers=1))
    assert outcomes[0].reason == "too_short"
    assert [(o.id, o.duration) for o in outcomes[1:]] == [("long_0", 10.0), ("long_10000", 10.0), ("long_20000", 5.0)]


def test_results_do_not_depend_on_worker_count(ingested):
    one = [c.to_dict() if hasattr(c, "to_dict") else c for c in segment(read_cuts(ingested), workers=1)]
    two = [c.to_dict() if hasattr(c, "to_dict") else c for c in segment(read_cuts(ingested), workers=2)]
    assert one == two


def test_unreadable_source_is_quarantined(tmp_path):
    cut = file_cut(write_audio(tmp_path / "gone.wav", tone(12.0)))
    os.remove(tmp_path / "gone.wav")
    (outcome,) = segment_cut(cut, SegmentConfig())
    assert outcome.reason == "unreadable"


def test_loudness_is_per_window(tmp_path):
    audio = np.concatenate([tone(10.0, amplitude=0.5), tone(10.0, amplitude=0.05)])
    cut = file_cut(write_audio(tmp_path / "two.wav", audio, subtype="FLOAT"))
    loud, quiet = segment_cut(cut, SegmentConfig())
    assert loud.custom["loudness_lufs"] - quiet.custom["loudness_lufs"] == pytest.approx(20.0, abs=0.2)


def run_cli(*args, env=None):
    return subprocess.run([sys.executable, "-m", "scoreaware", *args], capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, timeout=600)


def manifest_lines(path):
    with gzip.open(path, "rt") as f:
        return f.read().splitlines()


@pytest.mark.parametrize("stage", ["ingest", "segment"])
def test_resume_after_kill_equals_uninterrupted_run(stage, tiny_corpus, corpus_metadata, ingested, tmp_path):
    if stage == "ingest":
        base = ["curate", "ingest", str(tiny_corpus / "audio"), *sum((["-m", str(m)] for m in corpus_metadata), [])]
    else:
        base = ["curate", "segment", str(ingested), "--window", "4"]
    full = tmp_path / "full.jsonl.gz"
    assert run_cli(*base, "-o", str(full)).returncode == 0
    part = tmp_path / "part.jsonl.gz"
    killed = run_cli(*base, "-o", str(part), env={"SCOREAWARE_CRASH_AFTER_WRITES": "4"})
    assert killed.returncode == -9, killed.stderr  # SIGKILL mid-stage
    assert not part.exists()  # no final file from an unfinished run
    partial = tmp_path / ".part.partial" / "cuts.jsonl"
    with open(partial, "a") as f:
        f.write('{"id": "torn-line", "sta')  # a write cut off by the kill
    refused = run_cli(*base, "-o", str(part))
    assert refused.returncode == 1 and "--resume" in refused.stderr
    resumed = run_cli(*base, "-o", str(part), "--resume")
    assert resumed.returncode == 0, resumed.stderr
    assert manifest_lines(part) == manifest_lines(full)  # same items, same order: no gaps, no duplicates
    for stream in ("quarantine",) + (("recordings", "supervisions") if stage == "ingest" else ()):
        a = manifest_lines(tmp_path / f"part.{stream}.jsonl.gz")
        b = manifest_lines(tmp_path / f"full.{stream}.jsonl.gz")
        assert a == b, stream
    summary = read_provenance(part)["summary"]
    assert summary["this_run"]["resumed_from_items"] >= 3
    assert summary["kept"] == len(manifest_lines(full))  # counts cover the whole output, not the last run
    assert summary == {**read_provenance(full)["summary"], "this_run": summary["this_run"]}
    assert not (tmp_path / ".part.partial").exists()

import json
from collections import Counter

import pytest
from click.testing import CliRunner
from lhotse import RecordingSet, SupervisionSet

from scoreaware.cli.main import cli
from scoreaware.core.files import read_jsonl
from scoreaware.core.manifests import read_cuts
from scoreaware.core.provenance import read_provenance
from scoreaware.demo.synth import SR
from scoreaware.testing.dummies import tone, write_audio


def truth(corpus):
    return {row["path"]: row for row in read_jsonl(corpus / "truth.jsonl")}


def test_ingest_builds_all_three_manifests(ingested, tiny_corpus):
    cuts = read_cuts(ingested)
    expected = {p: t for p, t in truth(tiny_corpus).items() if t["defect"] not in ("truncated", "not_audio")}
    assert sorted(c.custom["relpath"] for c in cuts) == sorted(expected)
    recordings = RecordingSet.from_file(str(ingested).replace(".jsonl.gz", ".recordings.jsonl.gz"))
    supervisions = SupervisionSet.from_file(str(ingested).replace(".jsonl.gz", ".supervisions.jsonl.gz"))
    assert len(recordings) == len(supervisions) == len(cuts)
    for cut in cuts:
        spec = expected[cut.custom["relpath"]]
        assert cut.duration == pytest.approx(12.0, abs=0.06)  # from the audio
        assert cut.sampling_rate == SR
        assert cut.num_channels == spec["channels"]
        assert type(cut).__name__ == ("MultiCut" if spec["channels"] == 2 else "MonoCut")
        assert cut.custom["caption"] == spec["caption"]  # from captions.json
        assert cut.custom["tags"] == spec["tags"]  # from the Jamendo TSV
        assert cut.custom["license"].startswith("CC ")  # from tracks.csv
        assert cut.supervisions[0].text == spec["caption"]
        assert cut.load_audio().shape[-1] == cut.num_samples


def test_defective_files_are_quarantined_with_reasons(ingested, tiny_corpus):
    quarantine = list(read_jsonl(str(ingested).replace(".jsonl.gz", ".quarantine.jsonl.gz")))
    by_path = {row["id"]: row for row in quarantine}
    planted = {p: t["defect"] for p, t in truth(tiny_corpus).items() if t["defect"] in ("truncated", "not_audio")}
    assert {p: by_path[p]["reason"] for p in planted} == {
        p: ("corrupt" if d == "truncated" else "not_audio") for p, d in planted.items()
    }
    assert all(row["detail"] for row in quarantine)
    sidecar = read_provenance(ingested)
    assert sidecar["summary"]["quarantined"] == 2
    assert sidecar["summary"]["kept"] == 6
    assert sidecar["stage"] == "ingest"
    names = {i["path"].rsplit("/", 1)[-1] for i in sidecar["inputs"][1:]}
    assert names == {"autotagging.tsv", "captions.json", "tracks.csv"}
    assert all(len(i["sha256"]) == 64 for i in sidecar["inputs"][1:])


def test_durations_come_from_the_audio_not_the_metadata(tmp_path):
    write_audio(tmp_path / "audio" / "a.wav", tone(2.0), subtype="PCM_16")
    (tmp_path / "m.tsv").write_text(
        "TRACK_ID\tARTIST_ID\tALBUM_ID\tPATH\tDURATION\tTAGS\ntrack_1\tx\ty\ta.wav\t999.0\tgenre---pop\n"
    )
    out = tmp_path / "i.jsonl.gz"
    result = CliRunner().invoke(cli, ["curate", "ingest", str(tmp_path / "audio"), "-m", str(tmp_path / "m.tsv"),
                                      "-o", str(out)])
    assert result.exit_code == 0, result.output
    (cut,) = read_cuts(out)
    assert cut.duration == pytest.approx(2.0)
    assert cut.custom["tags"] == ["genre---pop"]


def test_each_metadata_format_alone(tiny_corpus, tmp_path):
    audio = tiny_corpus / "audio"
    fields = {"autotagging.tsv": "tags", "captions.json": "caption", "tracks.csv": "license"}
    for name, field in fields.items():
        out = tmp_path / f"{name}.jsonl.gz"
        result = CliRunner().invoke(cli, ["curate", "ingest", str(audio), "-m", str(tiny_corpus / "metadata" / name),
                                          "-o", str(out)])
        assert result.exit_code == 0, result.output
        cuts = list(read_cuts(out))
        assert all(field in c.custom for c in cuts), name
        others = set(fields.values()) - {field}
        assert not any(others & set(c.custom) for c in cuts), name


def test_plain_jsonl_metadata_and_audio_without_metadata(tmp_path):
    write_audio(tmp_path / "audio" / "x" / "song.flac", tone(1.0))
    write_audio(tmp_path / "audio" / "y" / "other.flac", tone(1.0))
    meta = tmp_path / "meta.jsonl"
    meta.write_text(json.dumps({"path": "x/song.flac", "caption": "hi", "tags": "a, b"}) + "\n"
                    + json.dumps({"id": "ghost", "caption": "no audio"}) + "\n")
    out = tmp_path / "i.jsonl.gz"
    result = CliRunner().invoke(cli, ["curate", "ingest", str(tmp_path / "audio"), "-m", str(meta), "-o", str(out)])
    assert result.exit_code == 0, result.output
    cuts = {c.id: c for c in read_cuts(out)}
    assert cuts["song"].custom["tags"] == ["a", "b"] and cuts["song"].custom["caption"] == "hi"
    assert "caption" not in cuts["other"].custom
    assert "1 without audio" in result.output and "1 audio files without metadata" in result.output
    assert read_provenance(out)["summary"]["tracks_without_metadata"] == 1


def test_duplicate_stems_keep_the_first_and_quarantine_the_rest(tmp_path):
    write_audio(tmp_path / "audio" / "a" / "take.wav", tone(1.0))
    write_audio(tmp_path / "audio" / "b" / "take.wav", tone(1.0))
    out = tmp_path / "i.jsonl.gz"
    assert CliRunner().invoke(cli, ["curate", "ingest", str(tmp_path / "audio"), "-o", str(out)]).exit_code == 0
    assert [c.custom["relpath"] for c in read_cuts(out)] == ["a/take.wav"]
    (row,) = read_jsonl(tmp_path / "i.quarantine.jsonl.gz")
    assert row["reason"] == "duplicate_id" and "--id-from path" in row["detail"]
    out2 = tmp_path / "p.jsonl.gz"
    assert CliRunner().invoke(cli, ["curate", "ingest", str(tmp_path / "audio"), "--id-from", "path",
                                    "-o", str(out2)]).exit_code == 0
    assert sorted(c.id for c in read_cuts(out2)) == ["a__take", "b__take"]


def test_bad_metadata_is_a_clean_cli_error(tmp_path):
    write_audio(tmp_path / "audio" / "a.wav", tone(1.0))
    bad = tmp_path / "bad.jsonl"
    bad.write_text("{nope\n")
    result = CliRunner().invoke(cli, ["curate", "ingest", str(tmp_path / "audio"), "-m", str(bad),
                                      "-o", str(tmp_path / "o.jsonl.gz")])
    assert result.exit_code == 1
    assert "bad.jsonl:1: invalid JSON" in result.output
    assert Counter(p.name for p in tmp_path.iterdir()) == Counter(["audio", "bad.jsonl"])  # nothing written

import json
import os

import numpy as np
import pytest
from click.testing import CliRunner
from datasets import Audio, load_dataset
from lhotse import CutSet

from scoreaware.cli.main import cli
from scoreaware.core.manifests import read_cuts
from scoreaware.curate.publish import PublishError, export_dataset, infer_columns, publish
from scoreaware.testing.dummies import file_cut, tone, write_audio


@pytest.fixture
def windows(tmp_path):
    """Three 2 s windows of a 6 s stereo file, plus one cut whose audio file is gone."""
    rng = np.random.default_rng(0)
    audio = (0.2 * rng.standard_normal((16000 * 6, 2))).astype(np.float32)
    source = write_audio(tmp_path / "song.flac", audio, subtype="PCM_16")
    whole = file_cut(source, cut_id="song")
    cuts = []
    for k in range(3):
        piece = whole.truncate(offset=2.0 * k, duration=2.0, preserve_id=True)
        cuts.append(piece.with_id(f"song_{2000 * k}").with_custom("caption", f"part {k}")
                    .with_custom("tags", ["genre---rock"]).with_custom("clap_score", 0.1 * k)
                    .with_custom("license", "CC BY 4.0").with_custom("extra", {"nested": k}))
    gone = file_cut(write_audio(tmp_path / "gone.wav", tone(1.0)), cut_id="gone", caption="lost")
    os.remove(tmp_path / "gone.wav")
    manifest = tmp_path / "sel.jsonl.gz"
    CutSet.from_cuts([*cuts, gone]).to_file(manifest)
    return manifest


def test_export_load_import_round_trip(windows, tmp_path):
    out = tmp_path / "ds"
    result = export_dataset(windows, out)
    assert result.rows == 3 and [s["id"] for s in result.skipped] == ["gone"]  # reported, not fatal
    assert json.loads((out / "skipped.jsonl").read_text())["id"] == "gone"
    dataset = load_dataset(str(out), split="train")
    assert isinstance(dataset.features["audio"], Audio)
    assert dataset["id"] == ["song_0", "song_2000", "song_4000"]
    assert dataset["tags"][0] == ["genre---rock"] and json.loads(dataset["extra"][1]) == {"nested": 1}
    raw = dataset.cast_column("audio", Audio(decode=False))
    import io

    import soundfile as sf

    for row, cut in zip(raw, read_cuts(windows)):
        audio, sr = sf.read(io.BytesIO(row["audio"]["bytes"]), dtype="float32", always_2d=True)
        assert sr == 16000 and audio.shape == (32000, 2)  # the window only, not the 6 s file
        assert audio.shape[0] / sr == pytest.approx(row["duration"]) == pytest.approx(cut.duration)
        assert np.abs(audio.T - cut.load_audio()).max() < 1e-4  # 16-bit FLAC
    imported = tmp_path / "imp.jsonl.gz"
    result = CliRunner().invoke(cli, ["curate", "import", str(out), "-o", str(imported)])
    assert result.exit_code == 0, result.output
    back = {c.id: c for c in read_cuts(imported)}
    original = {c.id: c for c in read_cuts(windows) if c.id != "gone"}
    assert back.keys() == original.keys()
    for key, cut in original.items():
        assert back[key].custom["caption"] == cut.custom["caption"]
        assert back[key].custom["clap_score"] == pytest.approx(cut.custom["clap_score"])
        assert back[key].custom["source_recording_id"] == "song"
        assert np.abs(back[key].load_audio() - cut.load_audio()).max() < 1e-4


def test_card_and_shards(windows, tmp_path):
    out = tmp_path / "ds"
    result = export_dataset(windows, out, max_shard_bytes=100_000)
    assert result.shards >= 2
    shards = sorted(p.name for p in (out / "data").glob("*.parquet"))
    assert shards[0] == f"train-00000-of-{result.shards:05d}.parquet" and len(shards) == result.shards
    assert len(load_dataset(str(out), split="train")) == 3
    card = (out / "README.md").read_text()
    assert card.startswith("---\n") and "cc-by-4.0" in card and "path: data/train-*.parquet" in card
    assert "| `clap_score` |" in card and "CC BY 4.0: 3 segments" in card and "1 segments were skipped" in card


def test_export_cli_refuses_to_clobber(windows, tmp_path):
    out = tmp_path / "ds"
    assert CliRunner().invoke(cli, ["curate", "export", str(windows), "-o", str(out)]).exit_code == 0
    again = CliRunner().invoke(cli, ["curate", "export", str(windows), "-o", str(out)])
    assert again.exit_code == 1 and "--overwrite" in again.output


def test_infer_columns_kinds(windows):
    kinds = infer_columns(read_cuts(windows))
    assert kinds == {"caption": "str", "tags": "list_str", "clap_score": "float", "license": "str", "extra": "json"}


class FakeHub:
    """The three HfApi calls publish makes before uploading (the Hub is unreachable here)."""

    def __init__(self, files=None):
        self.files, self.created = files, []

    def repo_exists(self, repo_id, repo_type):
        return self.files is not None

    def list_repo_files(self, repo_id, repo_type):
        return self.files

    def create_repo(self, repo_id, repo_type, private):
        self.created.append((repo_id, private))


def test_publish_refuses_a_non_empty_repo_without_overwrite(windows, tmp_path):
    export_dataset(windows, tmp_path / "ds")
    with pytest.raises(PublishError, match="already holds 2 files; pass --overwrite"):
        publish(tmp_path / "ds", "org/name", token="hf_secret", api=FakeHub([".gitattributes", "README.md",
                                                                             "data/x.parquet"]))


def test_publish_errors_are_clear_and_never_show_the_token(windows, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_TOKEN", "hf_verysecret")
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # nothing listens: the real client fails fast
    result = CliRunner().invoke(cli, ["curate", "publish", str(windows), "--repo-id", "org/name"])
    assert result.exit_code == 1
    assert "upload to org/name failed" in result.output and "hf_verysecret" not in result.output


def test_publish_without_a_token(windows, tmp_path, monkeypatch):
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))  # no saved login
    export_dataset(windows, tmp_path / "ds")
    with pytest.raises(PublishError, match="hf auth login"):
        publish(tmp_path / "ds", "org/name")

"""Inputs that used to crash or be misread: symlinks, many channels, corrupt and empty manifests,
caption-less cuts, incomplete manifests, and curated folders that moved."""

import gzip
import json
import os
import shutil

import numpy as np
import pytest
from click.testing import CliRunner
from lhotse import CutSet

from scoreaware.cli.main import cli
from scoreaware.core.files import read_jsonl
from scoreaware.core.manifests import read_cuts
from scoreaware.core.output import sibling
from scoreaware.core.provenance import read_provenance
from scoreaware.testing.dummies import file_cut, tone, write_audio
from scoreaware.testing.hostile import edit_lines, truncate_gzip


def invoke(*args):
    result = CliRunner().invoke(cli, [str(a) for a in args])
    assert "Traceback" not in result.output, result.output
    return result


def test_symlink_loops_and_dangling_links_are_quarantined(tmp_path):
    audio = tmp_path / "audio"
    write_audio(audio / "real" / "song.wav", tone(1.0))
    os.symlink(audio, audio / "real" / "back_to_top")  # a folder loop
    os.symlink(audio / "nowhere.wav", audio / "dangling.wav")
    os.symlink("self.wav", audio / "self.wav")  # a link to itself
    os.symlink(audio / "real" / "song.wav", audio / "alias.wav")  # a good link: ingested
    out = tmp_path / "i.jsonl.gz"
    result = invoke("curate", "ingest", audio, "-o", out)
    assert result.exit_code == 0, result.output
    assert sorted(c.id for c in read_cuts(out)) == ["alias", "song"]
    reasons = {row["id"]: row["reason"] for row in read_jsonl(sibling(out, "quarantine"))}
    assert reasons == {"dangling.wav": "dangling_symlink", "self.wav": "symlink_loop",
                       "real/back_to_top": "symlink_loop"}


def test_more_than_five_channels_segment_and_resume(tmp_path):
    rng = np.random.default_rng(0)
    eight = (0.1 * rng.standard_normal((16000 * 4, 8))).astype(np.float32)
    write_audio(tmp_path / "audio" / "surround.wav", eight)
    write_audio(tmp_path / "audio" / "stereo.wav", tone(4.0, channels=2))
    ingested = tmp_path / "i.jsonl.gz"
    assert invoke("curate", "ingest", tmp_path / "audio", "-o", ingested).exit_code == 0
    out = tmp_path / "s.jsonl.gz"
    result = invoke("curate", "segment", ingested, "--window", "2", "-o", out)
    assert result.exit_code == 0, result.output
    windows = {c.id: c for c in read_cuts(out)}
    assert {"surround_0", "surround_2000"} <= set(windows)
    assert all(np.isfinite(c.custom["loudness_lufs"]) for c in windows.values())


def test_one_source_that_breaks_segment_is_quarantined_not_fatal(tmp_path, monkeypatch):
    import scoreaware.curate.stages.segment as segment_stage

    cuts = [file_cut(write_audio(tmp_path / f"{n}.wav", tone(2.0)), cut_id=n) for n in ("a", "b")]
    original = segment_stage.segment_cut

    def flaky(cut, config, audio=None):
        if cut.id == "a":
            raise MemoryError("simulated")
        return original(cut, config, audio)

    monkeypatch.setattr(segment_stage, "segment_cut", flaky)
    out = list(segment_stage.segment(cuts, segment_stage.SegmentConfig(window=1.0), workers=1))
    assert [getattr(o, "reason", "window") for o in out] == ["segment_failed", "window", "window"]


# ------------------------------------------------------------------------- bad manifests
@pytest.fixture(scope="module")
def scored(tmp_path_factory):
    """A small manifest with everything filter/select/describe/export read."""
    root = tmp_path_factory.mktemp("scored")
    audio = write_audio(root / "a.wav", tone(2.0))
    cuts = [file_cut(audio, cut_id=f"c{i}", caption=f"clip {i}", clap_score=0.1 * i - 0.2, reward=float(i),
                     loudness_lufs=-20.0, window_start=0.0, source_cut_id="a") for i in range(6)]
    path = root / "scored.jsonl.gz"
    CutSet.from_cuts(cuts).to_file(path)
    return path


def stage_commands(manifest, out):
    return {
        "segment": ["curate", "segment", manifest, "-o", out],
        "filter": ["curate", "filter", manifest, "-o", out],
        "select": ["curate", "select", manifest, "-o", out],
        "describe": ["curate", "describe", manifest],
        "report": ["curate", "report", manifest, "-o", out.parent / "rep"],
        "export": ["curate", "export", manifest, "-o", out.parent / "ds"],
    }


CORRUPTIONS = {
    "truncated gzip": (lambda src, dst: truncate_gzip(src, dst, 0.5), "ends early"),
    "a line that is not JSON": (lambda src, dst: edit_lines(src, dst, lambda ls: ls[:3] + ["{oops"] + ls[3:]),
                                "line 4"),
    "a non-numeric score": (lambda src, dst: edit_lines(src, dst, lambda ls: ls[:2] + [
        ls[2].replace('"clap_score": 0.0', '"clap_score": "high"')] + ls[3:]), "line 3"),
    "a recordings manifest": (lambda src, dst: edit_lines(src, dst, lambda ls: [
        json.dumps(json.loads(line)["recording"]) for line in ls]), "recordings manifest"),
}


@pytest.mark.parametrize("stage", ["segment", "filter", "select", "describe", "report", "export"])
@pytest.mark.parametrize("corruption", list(CORRUPTIONS))
def test_bad_manifests_name_the_file_and_line(scored, tmp_path, stage, corruption):
    make, where = CORRUPTIONS[corruption]
    bad = make(scored, tmp_path / "bad.jsonl.gz")
    result = invoke(*stage_commands(bad, tmp_path / "out.jsonl.gz")[stage])
    assert result.exit_code == 1, result.output
    assert "bad.jsonl.gz" in result.output and where in result.output, result.output
    if corruption == "a non-numeric score":
        assert "clap_score" in result.output
    assert not (tmp_path / "out.jsonl.gz").exists()


@pytest.mark.parametrize("stage", ["segment", "filter", "select", "describe", "export"])
def test_an_empty_manifest_gives_an_empty_output(tmp_path, stage):
    empty = tmp_path / "empty.jsonl.gz"
    with gzip.open(empty, "wt"):
        pass
    out = tmp_path / "out.jsonl.gz"
    result = invoke(*stage_commands(empty, out)[stage])
    assert result.exit_code == 0, result.output
    if stage in ("segment", "filter", "select"):
        assert out.exists() and list(read_cuts(out)) == []
        assert read_provenance(out)["summary"]["kept"] == 0


def test_caption_less_cuts_flow_to_the_filter_which_decides(tmp_path, tiny_clap):
    audio = write_audio(tmp_path / "a.wav", tone(2.0))
    cuts = [file_cut(audio, cut_id="with", caption="a tone"), file_cut(audio, cut_id="without")]
    manifest = tmp_path / "m.jsonl.gz"
    CutSet.from_cuts(cuts).to_file(manifest)
    scored = tmp_path / "clap.jsonl.gz"
    result = invoke("curate", "score", "clap", manifest, "--model", tiny_clap, "-j", "0", "-o", scored)
    assert result.exit_code == 0, result.output
    assert "1 cuts have no caption" in result.output
    by_id = {c.id: c for c in read_cuts(scored)}
    assert by_id["without"].has_custom("clap_audio_emb") and by_id["without"].custom.get("clap_score") is None
    assert invoke("curate", "validate", scored).exit_code == 0
    kept = tmp_path / "f.jsonl.gz"
    assert invoke("curate", "filter", scored, "--clap-percentile", "0", "-o", kept).exit_code == 0
    assert [c.id for c in read_cuts(kept)] == ["with"]
    (rejected,) = read_cuts(sibling(kept, "rejected"))
    assert rejected.id == "without" and rejected.custom["filter_rule"] == "no_caption"


# ---------------------------------------------------------------------------- validation
def test_validate_auto_requires_what_earlier_stages_guaranteed(clap_scored, tmp_path):
    assert invoke("curate", "validate", clap_scored).exit_code == 0
    stripped = tmp_path / "clap.jsonl.gz"
    edit_lines(clap_scored, stripped, lambda ls: [json.dumps({**json.loads(line), "custom": {
        k: v for k, v in json.loads(line)["custom"].items() if k != "window_start"}}) for line in ls])
    shutil.copy(str(clap_scored).replace(".jsonl.gz", ".provenance.json"), tmp_path / "clap.provenance.json")
    result = invoke("curate", "validate", stripped)
    assert result.exit_code == 1
    assert "window_start" in result.output and "segment → clap" in result.output


@pytest.mark.parametrize("stream, says", [("recordings", "recordings manifest"), ("quarantine", "quarantine list"),
                                          ("supervisions", "supervisions manifest")])
def test_validate_says_what_a_non_cut_manifest_is(ingested, stream, says):
    result = invoke("curate", "validate", sibling(ingested, stream))
    assert result.exit_code == 1 and says in result.output
    assert result.output.count("\n") <= 3  # one clear sentence, not an error per attribute


# --------------------------------------------------------------------------- portability
def test_a_curated_folder_can_move(segmented4, clap_scored, tiny_mert, tmp_path):
    """Outputs made in one folder still load their audio and arrays after the folder moves."""
    here = tmp_path / "project"
    here.mkdir()
    for path in (segmented4, clap_scored):  # the manifests with their sidecars and arrays
        for item in path.parent.iterdir():
            (shutil.copytree if item.is_dir() else shutil.copy)(item, here / item.name)
    corpus = segmented4.parent.parent / "corpus0"
    moved = tmp_path / "elsewhere"
    shutil.copytree(here, moved / "project")
    shutil.copytree(corpus, moved / "corpus0")  # the audio moves along, keeping the relative layout
    clap = moved / "project" / "clap.jsonl.gz"
    cut = next(iter(read_cuts(clap)))
    assert str(moved) in cut.recording.sources[0].source
    assert cut.load_audio().shape[-1] > 0 and cut.load_custom("clap_audio_emb").shape == (512,)
    result = invoke("curate", "score", "reward", clap, "--checkpoint", reward_head(tmp_path), "--mert-model",
                    tiny_mert, "-j", "0", "-o", moved / "project" / "reward.jsonl.gz")
    assert result.exit_code == 0, result.output


def reward_head(tmp_path):
    from scoreaware.curate.scoring.reward import RewardConfig, RewardHead, save_reward

    path = tmp_path / "head.pt"
    save_reward(path, RewardHead(RewardConfig(mert_dim=1024, hidden=(8,))))
    return path


def test_the_dataset_card_says_how_to_decode_the_audio(scored, tmp_path):
    assert invoke("curate", "export", scored, "-o", tmp_path / "ds").exit_code == 0
    card = (tmp_path / "ds" / "README.md").read_text()
    assert "torchcodec" in card and "Audio(decode=False)" in card and "soundfile" in card

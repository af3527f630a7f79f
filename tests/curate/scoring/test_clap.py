import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from scoreaware.cli.main import cli
from scoreaware.core.arrays import ArrayStore
from scoreaware.core.files import read_jsonl
from scoreaware.core.manifests import read_cuts
from scoreaware.core.provenance import read_provenance
from scoreaware.curate.scoring.audio import mono_resampled, policy_windows, repeat_pad
from scoreaware.curate.scoring.clap import _laion_batch, load_clap, load_laion_state
from scoreaware.curate.stages.score_clap import ClapScoreConfig, score_clap
from scoreaware.testing.dummies import file_cut, tone, write_audio


@pytest.fixture(scope="module")
def encoder(tiny_clap):
    return load_clap("transformers", str(tiny_clap))


def scores(path):
    return {c.id: c.custom["clap_score"] for c in read_cuts(path)}


def test_cli_scores_every_cut_and_stores_embeddings(clap_scored, segmented4, encoder):
    cuts = list(read_cuts(clap_scored))
    assert [c.id for c in cuts] == [c.id for c in read_cuts(segmented4)]
    for cut in cuts[:5]:
        audio, text = cut.load_custom("clap_audio_emb"), cut.load_custom("clap_text_emb")
        assert audio.shape == text.shape == (512,)
        assert np.linalg.norm(audio) == pytest.approx(1.0, abs=1e-5)
        assert cut.custom["clap_score"] == pytest.approx(float(audio @ text), abs=1e-6)
    # the stored embedding equals a fresh computation through the encoder
    cut = cuts[0]
    windows = policy_windows(mono_resampled(cut, 48_000), encoder.window, "center")
    fresh = encoder.embed_audio(encoder.preprocessor(windows))[0]
    assert np.allclose(fresh, cut.load_custom("clap_audio_emb"), atol=1e-5)
    assert np.allclose(encoder.embed_text([cut.custom["caption"]])[0], cut.load_custom("clap_text_emb"), atol=1e-5)
    sidecar = read_provenance(clap_scored)
    assert sidecar["options"]["policy"] == "center" and sidecar["options"]["backend"] == "transformers"


def test_text_is_embedded_once_per_distinct_caption(clap_scored):
    cuts = list(read_cuts(clap_scored))
    captions = {c.custom["caption"] for c in cuts}
    text_dir = clap_scored.parent / "clap.arrays" / "clap_text"
    assert len(list(text_dir.rglob("*.npy"))) == len(captions) < len(cuts)
    by_caption = {}
    for c in cuts:
        by_caption.setdefault(c.custom["caption"], set()).add(c.custom["clap_text_emb"].storage_key)
    assert all(len(keys) == 1 for keys in by_caption.values())


def test_same_manifest_scored_twice_is_identical_and_batch_size_does_not_matter(segmented4, encoder, tmp_path):
    def run(batch_size, workers, name):
        config = ClapScoreConfig(batch_size=batch_size, workers=workers)
        return {c.id: c.custom["clap_score"]
                for c in score_clap(read_cuts(segmented4), encoder, ArrayStore(tmp_path / name), config)}

    a, b = run(8, 2, "a"), run(8, 2, "b")
    assert a == b
    c = run(1, 0, "c")
    assert a.keys() == c.keys()
    assert np.allclose([a[k] for k in a], [c[k] for k in a], atol=1e-5)


def test_scoring_gives_the_process_its_threads_back(segmented4, encoder, tmp_path):
    # scoring lends the model the cores its decoding workers leave; a demo or a driver trains
    # afterwards in the same process and must get every thread back
    torch.set_num_threads(2)
    config = ClapScoreConfig(batch_size=8, workers=1)
    scored = score_clap(read_cuts(segmented4), encoder, ArrayStore(tmp_path / "a"), config)
    next(scored)
    assert torch.get_num_threads() == max(1, (os.cpu_count() or 1) - 1)
    list(scored)
    assert torch.get_num_threads() == 2


@pytest.mark.parametrize("policy", ["first", "center", "mean"])
def test_window_policies_are_deterministic(policy):
    audio = np.arange(240, dtype=np.float32)
    windows = policy_windows(audio, 100, policy)
    again = policy_windows(audio, 100, policy)
    assert all(np.array_equal(x, y) for x, y in zip(windows, again))
    expected = {"first": [(0, 100)], "center": [(70, 170)], "mean": [(0, 100), (100, 200)]}[policy]
    assert [(int(w[0]), int(w[-1]) + 1) for w in windows] == expected  # the 40-sample tail (< half) is dropped
    assert policy_windows(audio[:80], 100, policy)[0].shape == (80,)


def test_long_cuts_use_the_policy_windows(tmp_path, encoder):
    rng = np.random.default_rng(0)
    audio = np.concatenate([tone(10.0, sr=48_000, freq=f) for f in (220, 880, 3000)])
    audio += 0.01 * rng.standard_normal(audio.shape).astype(np.float32)
    cut = file_cut(write_audio(tmp_path / "long.wav", audio, sr=48_000, subtype="FLOAT"), caption="three tones")
    result = {}
    for policy in ("first", "center", "mean"):
        (scored,) = score_clap([cut], encoder, ArrayStore(tmp_path / policy), ClapScoreConfig(policy=policy,
                                                                                            workers=0))
        result[policy] = scored.load_custom("clap_audio_emb")
    assert not np.allclose(result["first"], result["center"])
    windows = [encoder.embed_audio(encoder.preprocessor([audio[i * 480_000:(i + 1) * 480_000, 0]]))[0]
               for i in range(3)]
    mean = np.mean(windows, axis=0)
    assert np.allclose(result["mean"], mean / np.linalg.norm(mean), atol=1e-5)
    assert np.allclose(result["center"], windows[1], atol=1e-5)


def test_missing_caption_and_unreadable_audio_are_quarantined(tmp_path, encoder):
    ok = file_cut(write_audio(tmp_path / "ok.wav", tone(2.0)), caption="a tone")
    nocap = file_cut(write_audio(tmp_path / "nocap.wav", tone(2.0)))
    gone = file_cut(write_audio(tmp_path / "gone.wav", tone(2.0)), caption="x")
    os.remove(tmp_path / "gone.wav")
    out = list(score_clap([ok, nocap, gone], encoder, ArrayStore(tmp_path / "arr"), ClapScoreConfig(workers=2)))
    assert [getattr(o, "reason", "kept") for o in out] == ["kept", "kept", "unreadable"]
    # the caption-less cut is embedded (the reward, FAD and REPA need it) but has no score
    assert out[1].custom.get("clap_score") is None and out[1].has_custom("clap_audio_emb")
    assert "clap_text_emb" not in out[1].custom
    assert out[0].custom["clap_score"] is not None


def test_caption_field_option_rescores_another_field(clap_scored, tiny_clap, tmp_path):
    import gzip
    import json

    src = tmp_path / "recap.jsonl.gz"
    with gzip.open(clap_scored, "rt") as f, gzip.open(src, "wt") as g:
        for line in f:
            row = json.loads(line)
            row["custom"]["caption_short"] = "noise"
            g.write(json.dumps(row) + "\n")
    out = tmp_path / "rescored.jsonl.gz"
    result = CliRunner().invoke(cli, ["curate", "score", "clap", str(src), "--model", str(tiny_clap),
                                      "--caption-field", "caption_short", "-o", str(out), "-j", "0"])
    assert result.exit_code == 0, result.output
    before, after = scores(clap_scored), scores(out)
    assert before.keys() == after.keys() and before != after
    assert len({c.custom["clap_text_emb"].storage_key for c in read_cuts(out)}) == 1


def test_resume_after_kill_does_not_rescore(segmented4, tiny_clap, tmp_path):
    base = [sys.executable, "-m", "scoreaware", "curate", "score", "clap", str(segmented4), "--model", str(tiny_clap),
            "-o", str(tmp_path / "c.jsonl.gz"), "--batch-size", "4"]
    killed = subprocess.run(base, env={**os.environ, "SCOREAWARE_CRASH_AFTER_WRITES": "6"}, capture_output=True)
    assert killed.returncode == -9
    partial = [r["id"] for r in read_jsonl(tmp_path / ".c.partial" / "cuts.jsonl")]
    assert len(partial) == 6
    resumed = subprocess.run([*base, "--resume"], capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr
    assert "6 of them written before --resume" in resumed.stdout
    ids = [c.id for c in read_cuts(tmp_path / "c.jsonl.gz")]
    assert ids == [c.id for c in read_cuts(segmented4)]
    summary = read_provenance(tmp_path / "c.jsonl.gz")["summary"]
    assert summary["this_run"]["kept"] == len(ids) - 6  # only the rest was scored
    assert summary["kept"] == len(ids)  # and the sidecar counts the whole output


def test_laion_batch_repeat_pads_and_quantizes_like_laion_clap():
    short = np.linspace(-1, 1, 30, dtype=np.float32)
    batch = _laion_batch(100, True, [short, np.ones(100, np.float32) * 0.5])
    assert batch.shape == (2, 100)
    assert np.allclose(batch[0, :90], np.tile(short, 3), atol=1 / 32767)  # 3 whole copies, then zeros
    assert np.all(batch[0, 90:] == 0)
    assert batch[1, 0] == np.float32(16383 / 32767)  # int16 round trip
    assert np.array_equal(repeat_pad(short, 10), short[:10])


class FakeClapModule:
    """Holds `.model` like laion_clap.CLAP_Module; the loader only touches `.model`."""

    def __init__(self):
        self.model = torch.nn.Module()
        self.model.text_branch = torch.nn.Linear(2, 2)
        self.model.register_buffer("logit_scale", torch.ones(1))


@pytest.mark.parametrize("with_position_ids", [True, False])
def test_laion_checkpoints_load_with_or_without_position_ids(tmp_path, with_position_ids):
    source = FakeClapModule()
    state = {f"module.{k}": v for k, v in source.model.state_dict().items()}
    if with_position_ids:
        state["module.text_branch.embeddings.position_ids"] = torch.arange(4)
    torch.save({"state_dict": state, "epoch": 15}, tmp_path / "ckpt.pt")
    target = FakeClapModule()
    load_laion_state(target, str(tmp_path / "ckpt.pt"))
    assert torch.equal(target.model.text_branch.weight, source.model.text_branch.weight)


def test_laion_checkpoint_of_the_wrong_model_is_refused(tmp_path):
    torch.save({"state_dict": {"audio_branch.other.weight": torch.zeros(3)}}, tmp_path / "bad.pt")
    with pytest.raises(ValueError, match="HTSAT-base goes with the music checkpoints"):
        load_laion_state(FakeClapModule(), str(tmp_path / "bad.pt"))


@pytest.mark.parametrize("fusion", [False, True])
def test_torch_log_mel_matches_the_transformers_feature_extractor(tiny_clap, fusion):
    from transformers import ClapProcessor

    from scoreaware.curate.scoring.clap import ClapLogMel, hf_features

    extractor = ClapProcessor.from_pretrained(tiny_clap).feature_extractor
    rng = np.random.default_rng(0)
    windows = [0.3 * rng.standard_normal(480_000).astype(np.float32),  # a full window
               0.1 * rng.standard_normal(150_000).astype(np.float32),  # short: repeat-padded
               np.full(480_000, 1e-7, dtype=np.float32)]  # near silence: the 1e-10 floor
    ours = ClapLogMel(extractor, fusion)(windows)
    reference = hf_features(extractor, "fusion" if fusion else "rand_trunc", windows)
    assert ours["input_features"].shape == reference["input_features"].shape
    assert torch.allclose(ours["input_features"], reference["input_features"], atol=1e-3)
    assert not ours["is_longer"].any()

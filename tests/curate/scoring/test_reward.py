import itertools
import json
import random

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from scoreaware.cli.main import cli
from scoreaware.core.arrays import ArrayStore
from scoreaware.core.manifests import read_cuts
from scoreaware.core.provenance import read_provenance
from scoreaware.curate.scoring.reward import (
    RewardConfig,
    RewardHead,
    assemble_features,
    load_mert,
    load_reward,
    save_reward,
    score_features,
)
from scoreaware.curate.stages.score_reward import RewardScoreConfig, score_reward
from scoreaware.train.reward_fit import chance_interval


def test_head_has_the_tunejury_architecture():
    head = RewardHead(RewardConfig())
    linears = [m for m in head.net if isinstance(m, torch.nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [
        (2048, 1024), (1024, 512), (512, 256), (256, 128), (128, 1)]
    assert sum(isinstance(m, torch.nn.BatchNorm1d) for m in head.net) == 4
    assert {m.p for m in head.net if isinstance(m, torch.nn.Dropout)} == {0.5}
    assert head(torch.randn(3, 2048)).shape == (3,)


def test_empty_prompt_protocol_uses_zero_text_features():
    feats = assemble_features(np.ones(512), np.full(1024, 2.0), None)
    assert feats.shape == (1, 2048) and np.all(feats[0, 1536:] == 0) and np.all(feats[0, 512:1536] == 2)


def test_checkpoint_round_trip_and_foreign_tunejury_state_dict(tmp_path):
    torch.manual_seed(0)
    head = RewardHead(RewardConfig())
    head.eval()
    for m in head.net:  # make the BatchNorm running stats non-trivial
        if isinstance(m, torch.nn.BatchNorm1d):
            m.running_mean.uniform_(-1, 1)
            m.running_var.uniform_(0.5, 2)
    x = np.random.default_rng(0).standard_normal((5, 2048)).astype(np.float32)
    save_reward(tmp_path / "ours.pt", head, metrics={"holdout": {"accuracy": 0.7}})
    assert np.allclose(score_features(load_reward(tmp_path / "ours.pt"), x), score_features(head, x))
    # a released checkpoint names its layers differently; only the architecture must match
    foreign = {"model_state_dict": {f"mlp.layer{i:02d}.{k.split('.')[-1]}": v
                                    for i, (k, v) in enumerate(head.state_dict().items())}}
    torch.save(foreign, tmp_path / "tunejury.pt")
    assert np.allclose(score_features(load_reward(tmp_path / "tunejury.pt"), x), score_features(head, x), atol=1e-6)


def test_incompatible_checkpoint_is_refused(tmp_path):
    torch.save({"w": torch.zeros(7, 3), "b": torch.zeros(7)}, tmp_path / "bad.pt")
    with pytest.raises(ValueError, match="1-unit Linear"):
        load_reward(tmp_path / "bad.pt")


@pytest.fixture(scope="module")
def reward_ckpt(clap_scored, tiny_mert, tmp_path_factory):
    """Reward head trained through the CLI on cut-id pairs where the louder window wins."""
    cuts = list(read_cuts(clap_scored))
    random.seed(0)
    folder = tmp_path_factory.mktemp("reward")
    with open(folder / "pairs.jsonl", "w") as f:
        for a, b in itertools.combinations(cuts, 2):  # every pair: the held-out clips still form some
            a, b = random.sample([a, b], 2)
            winner = "a" if a.custom["loudness_lufs"] > b.custom["loudness_lufs"] else "b"
            f.write(json.dumps({"cut_a": a.id, "cut_b": b.id, "winner": winner}) + "\n")
    out = folder / "reward.pt"
    result = CliRunner().invoke(cli, ["train", "reward", str(folder / "pairs.jsonl"), "--manifest", str(clap_scored),
                                      "--mert-model", str(tiny_mert), "-o", str(out), "--epochs", "100",
                                      "--holdout", "0.4"])
    assert result.exit_code == 0, result.output
    assert "held-out accuracy" in result.output and out.with_suffix(".png").is_file()
    return out


def test_reward_trained_on_loudness_pairs_beats_chance(reward_ckpt):
    metrics = torch.load(reward_ckpt, weights_only=False)["metrics"]["holdout"]
    # held out by clip: no held-out pair shares a clip with training, so this is generalization
    assert metrics["pairs"] >= 20, metrics
    assert metrics["accuracy"] > chance_interval(metrics["pairs"]), metrics


def test_score_reward_cli_writes_reward_and_mert_features(clap_scored, reward_ckpt, tiny_mert, tmp_path):
    out = tmp_path / "reward.jsonl.gz"
    result = CliRunner().invoke(cli, ["curate", "score", "reward", str(clap_scored), "--checkpoint", str(reward_ckpt),
                                      "--mert-model", str(tiny_mert), "-o", str(out)])
    assert result.exit_code == 0, result.output
    cuts = list(read_cuts(out))
    assert len(cuts) == len(list(read_cuts(clap_scored)))
    rewards = np.array([c.custom["reward"] for c in cuts])
    assert np.all(np.isfinite(rewards)) and rewards.std() > 0
    assert cuts[0].load_custom("mert_emb").shape == (1024,)
    assert cuts[0].custom["clap_score"] is not None  # earlier scores are carried
    louder = [c.custom["loudness_lufs"] for c in cuts]
    assert np.corrcoef(louder, rewards)[0, 1] > 0.3  # the head learned "louder wins"
    validate = CliRunner().invoke(cli, ["curate", "validate", str(out)])
    assert validate.exit_code == 0 and "RewardScoredCuts" in validate.output


def test_score_reward_uses_the_prompt_protocol_the_head_was_trained_with(clap_scored, reward_ckpt, tiny_mert,
                                                                          tmp_path):
    blob = torch.load(reward_ckpt, weights_only=True)
    caption_head = tmp_path / "caption_head.pt"
    torch.save(blob | {"prompt_protocol": "caption"}, caption_head)

    def run(checkpoint, *options):
        out = tmp_path / f"{checkpoint.stem}{len(options)}.jsonl.gz"
        result = CliRunner().invoke(cli, ["curate", "score", "reward", str(clap_scored), "--checkpoint",
                                          str(checkpoint), "--mert-model", str(tiny_mert), "-o", str(out), *options])
        assert result.exit_code == 0, result.output
        return read_provenance(out)["options"]["prompt_protocol"], [c.custom["reward"] for c in read_cuts(out)]

    protocol, by_caption = run(caption_head)
    assert protocol == "caption"
    protocol, by_empty = run(caption_head, "--prompt-protocol", "empty")
    assert protocol == "empty" and not np.allclose(by_caption, by_empty)  # the text features took part
    assert run(reward_ckpt)[0] == "empty"  # trained with the empty-prompt protocol


def test_cut_without_clap_embedding_is_quarantined(tmp_path, tiny_mert, segmented4):
    cut = next(iter(read_cuts(segmented4)))
    head = RewardHead(RewardConfig())
    out = list(score_reward([cut], head, load_mert(str(tiny_mert)), ArrayStore(tmp_path), RewardScoreConfig(
        workers=0)))
    assert out[0].reason == "missing_clap_embedding"


def test_mert_embed_layers_gives_both_features_from_one_forward_per_clip(tiny_mert):
    mert = load_mert(str(tiny_mert))
    rng = np.random.default_rng(0)
    clips = [0.1 * rng.standard_normal(n).astype(np.float32) for n in (24_000, 36_000, 12_000)]
    calls = []
    hook = mert.model.register_forward_hook(lambda *_: calls.append(1))
    both = mert.embed_layers(clips, ("last", "all"))
    hook.remove()
    assert len(calls) == len(clips)  # one forward per clip serves both settings
    with torch.inference_mode():  # each setting by its definition, in forwards of its own
        inputs = [mert.extractor(c, sampling_rate=mert.sampling_rate, return_tensors="pt")["input_values"]
                  for c in clips]
        last = np.stack([mert.model(x).last_hidden_state.mean(1)[0].numpy() for x in inputs])
        every = np.stack([torch.stack(mert.model(x, output_hidden_states=True).hidden_states).mean(0).mean(1)[0].numpy()
                          for x in inputs])
    np.testing.assert_allclose(both["last"], last, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(both["all"], every, rtol=1e-5, atol=1e-6)
    assert not np.allclose(last, every, atol=1e-3)  # the two settings are different features
    np.testing.assert_array_equal(mert.embed(clips, "all"), both["all"])
    with pytest.raises(ValueError, match="not implemented"):
        mert.embed_layers(clips, ("last", "middle"))

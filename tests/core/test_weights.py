"""Weights stored in float16 load as float32 through the real loaders, at half the bytes, and a
value float16 cannot hold is refused before anything is written."""

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

from scoreaware.core.weights import store_half
from scoreaware.curate.scoring.reward import RewardConfig, RewardHead, load_reward, save_reward, score_features
from scoreaware.demo.tiny_models import make_tiny_oobleck, make_tiny_qwen2


def test_a_transformers_model_loads_in_float32_and_answers_as_before(tmp_path):
    from transformers import AutoModelForCausalLM

    folder = make_tiny_qwen2(tmp_path / "qwen2")
    ids = torch.arange(1, 17)[None]
    with torch.no_grad():
        before = AutoModelForCausalLM.from_pretrained(folder).eval()(ids).logits
    old, new = store_half(folder)
    assert new < 0.55 * old
    model = AutoModelForCausalLM.from_pretrained(folder).eval()
    assert {p.dtype for p in model.parameters()} == {torch.float32}
    with torch.no_grad():
        after = model(ids).logits
    assert torch.allclose(after, before, atol=2e-2), (after - before).abs().max()
    assert (after.argmax(-1) == before.argmax(-1)).float().mean() > 0.9
    # halving twice changes nothing
    assert store_half(folder) == (new, new)


def test_a_diffusers_codec_loads_in_float32(tmp_path):
    from scoreaware.train.codecs import load_oobleck

    folder = make_tiny_oobleck(tmp_path / "vae")
    store_half(folder)
    assert {v.dtype for v in load_file(next(folder.glob("*.safetensors"))).values()} == {torch.float16}
    assert {p.dtype for p in load_oobleck(str(folder), "cpu").parameters()} == {torch.float32}


def test_a_reward_checkpoint_keeps_its_record_and_scores_as_before(tmp_path):
    torch.manual_seed(0)
    head = RewardHead(RewardConfig(mert_dim=64, hidden=(32, 16))).eval()
    save_reward(tmp_path / "reward.pt", head, metrics={"accuracy": 0.9}, extra={"features": {"clap_weights": "abc"}})
    x = np.random.default_rng(0).standard_normal((8, head.config.input_dim)).astype(np.float32)
    store_half(tmp_path / "reward.pt")
    loaded = load_reward(tmp_path / "reward.pt")
    assert loaded.features == {"clap_weights": "abc"}
    assert np.allclose(score_features(loaded, x), score_features(head, x), atol=1e-2)


def test_a_value_float16_cannot_hold_is_refused_and_nothing_is_written(tmp_path):
    good, bad = tmp_path / "a.safetensors", tmp_path / "b.safetensors"
    save_file({"w": torch.ones(3)}, good)
    save_file({"w": torch.tensor([1.0, 1e6]), "ids": torch.arange(3)}, bad)
    before = good.read_bytes(), bad.read_bytes()
    with pytest.raises(ValueError, match="b.safetensors.*'w'.*1e\\+06"):
        store_half(tmp_path)
    assert (good.read_bytes(), bad.read_bytes()) == before
    save_file({"w": torch.tensor([1.0, float("nan")])}, bad)
    with pytest.raises(ValueError, match="cannot store"):
        store_half(bad)
    save_file({"w": torch.tensor([1.0, 2.0]), "ids": torch.arange(3)}, bad)
    store_half(tmp_path)
    assert load_file(bad)["ids"].dtype == torch.int64 and load_file(bad)["w"].dtype == torch.float16

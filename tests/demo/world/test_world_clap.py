"""The world's domain CLAP: what a caption is a positive for, and the command that trains it."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from scoreaware.cli.main import cli
from scoreaware.demo.world.clap import CARD, CLAIMED_FIELDS, claims_hold, describe_clip
from scoreaware.demo.world.corpus import plan_corpus


def _labelled(seed: int = 5):
    spec = plan_corpus(1, seed)[0]
    return replace(spec, key="D", mode="minor", meter="3/4")


def test_a_caption_is_a_positive_for_its_clip_and_for_no_clip_of_another_instrument():
    spec, rng = _labelled(), np.random.default_rng(0)
    other_instrument = replace(spec, instrument="flute" if spec.instrument != "flute" else "oboe")
    for _ in range(200):
        description = describe_clip(spec, rng)
        assert set(description.claims) <= set(CLAIMED_FIELDS) and "instrument" in description.claims
        assert claims_hold(description.claims, spec)
        assert not claims_hold(description.claims, other_instrument)


def test_a_clip_that_differs_in_one_label_is_a_positive_exactly_when_the_caption_leaves_that_label_out():
    """A planted difference in mode: the caption still fits when it does not say the mode, never when it does."""
    spec, rng = _labelled(), np.random.default_rng(1)
    major = replace(spec, mode="major")
    seen = set()
    for _ in range(300):
        description = describe_clip(spec, rng)
        says_mode = "mode" in description.claims
        seen.add(says_mode)
        assert claims_hold(description.claims, major) is (not says_mode), description.text
    assert seen == {True, False}  # both kinds of caption were drawn, so both branches were checked


@pytest.fixture(scope="module")
def tiny_world_clap(tmp_path_factory):
    out = tmp_path_factory.mktemp("world") / "world_clap"
    result = CliRunner().invoke(cli, ["demo", "train-world-clap", "-o", str(out), "--clips", "12", "--epochs", "1",
                                      "--eval-clips", "12", "--json"])
    assert result.exit_code == 0, result.output
    return out, result


def test_the_command_trains_a_clap_that_the_scorer_loads_with_the_world_vocabulary(tiny_world_clap):
    from scoreaware.curate.scoring.clap import load_transformers_clap

    out, result = tiny_world_clap
    card = json.loads(result.stdout)
    assert card == json.loads((out / CARD).read_text())
    assert card["recipe"]["clips"] == 12 and card["recipe"]["epochs"] == 1 and card["examples"] >= 12
    measured = card["measured"]
    assert measured["clips"] == 12 and 0.0 <= measured["auroc_mismatched_instrument"] <= 1.0
    assert set(measured) >= {"instrument", "tempo_band", "mode", "style"}
    encoder = load_transformers_clap(str(out))
    assert encoder.embed_text(["a piece played on harpsichord"]).shape[0] == 1
    # the world's words are whole tokens (the synthetic world's vocabulary splits this one into six pieces)
    from transformers import ClapProcessor

    assert ClapProcessor.from_pretrained(out).tokenizer.tokenize("harpsichord") == ["harpsichord"]


def test_the_reward_command_fits_a_head_on_the_world_claps_features_that_the_scorer_loads(tiny_world_clap, tmp_path):
    from scoreaware.curate.scoring.clap import load_transformers_clap
    from scoreaware.curate.scoring.reward import load_reward
    from scoreaware.demo.world.reward import CARD as REWARD_CARD
    from scoreaware.demo.world.reward import HEAD

    clap, _ = tiny_world_clap
    out = tmp_path / "world_reward"
    result = CliRunner().invoke(cli, ["demo", "train-world-reward", "-o", str(out), "--clap", str(clap),
                                      "--clips", "12", "--epochs", "2", "--eval-clips", "12", "--json"])
    assert result.exit_code == 0, result.output
    card = json.loads(result.stdout)
    assert card == json.loads((out / REWARD_CARD).read_text()) and not (out / "_pairs").exists()
    assert card["stored"] == "float16" and torch.load(out / HEAD, weights_only=True)["state_dict"][
        "net.0.weight"].dtype == torch.float16  # shipped at half the bytes, loaded in float32
    measured = card["measured"]
    assert measured["clips"] == 12 and set(measured) >= {"clean_above_degraded", "auroc_clean_degraded",
                                                         "matched_above_mismatched"}
    head = load_reward(out / HEAD)  # weights_only loading, as `curate score reward` does
    assert head.features["clap_weights"] == load_transformers_clap(str(clap)).fingerprint


def test_the_reward_command_names_a_missing_clap_without_a_traceback(tmp_path):
    result = CliRunner().invoke(cli, ["demo", "train-world-reward", "-o", str(tmp_path / "r"), "--clap",
                                      str(tmp_path / "nowhere")])
    assert result.exit_code == 2 and "holds no CLAP" in result.output and "Traceback" not in result.output
    assert not (tmp_path / "r").exists()


def test_the_shipped_world_clap_meets_its_card_on_renders_of_an_unseen_seed():
    """48 renders of held-out works with a seed neither its training (306) nor its card (302) used,
    through the scorer's loader: the instrument heard zero-shot within sampling noise of the card,
    and a clip's own caption above another instrument's (the demo's planted mismatch) ≥ 0.9."""
    from scoreaware.demo.domain.build import DEFAULT_MODELS
    from scoreaware.demo.world.clap import WORLD_CLAP_SEED, measure_world_clap

    folder = DEFAULT_MODELS / "world_clap"
    card = json.loads((folder / CARD).read_text())
    assert card["recipe"]["seed"] == WORLD_CLAP_SEED and card["command"].startswith("scoreaware demo train-world-clap")
    found = measure_world_clap(folder, clips=48, seed=308)
    expected = card["measured"]["instrument"]["accuracy"]
    assert expected >= 0.6 and card["measured"]["auroc_mismatched_instrument"] >= 0.95
    slack = 2.5 * np.sqrt(expected * (1 - expected) / found["clips"])
    assert found["instrument"]["accuracy"] >= expected - slack, found
    assert found["auroc_mismatched_instrument"] >= 0.9, found


def test_the_shipped_world_reward_meets_its_card_on_renders_of_an_unseen_seed():
    """48 renders of held-out works with a seed neither its training (307) nor its card (302) used,
    scored as `curate score reward` scores them on the shipped world CLAP: clean above degraded
    (AUROC, the demo's target ≥ 0.85) and a clip's own caption above another instrument's."""
    from scoreaware.demo.domain.build import DEFAULT_MODELS
    from scoreaware.demo.domain.targets import measure_reward
    from scoreaware.demo.world.captions import caption_text
    from scoreaware.demo.world.clips import rendered_clips
    from scoreaware.demo.world.reward import CARD as REWARD_CARD
    from scoreaware.demo.world.reward import HEAD, WORLD_REWARD_SEED, other_instrument

    folder = DEFAULT_MODELS / "world_reward"
    card = json.loads((folder / REWARD_CARD).read_text())
    assert card["recipe"]["seed"] == WORLD_REWARD_SEED and card["clap"] == "world_clap"
    found = measure_reward(DEFAULT_MODELS, rendered_clips(48, 310, 10.0, "test"), 310, reward=folder / HEAD,
                           clap=DEFAULT_MODELS / "world_clap", caption=caption_text, differ=other_instrument)
    assert card["measured"]["auroc_clean_degraded"] >= 0.85
    assert found["auroc_clean_degraded"] >= 0.85 - 2.5 * 0.04, found  # 48 + 48 clips: SE of an AUROC near 0.9
    assert found["matched_above_mismatched"] >= 0.85, found

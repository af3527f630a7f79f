"""The descriptions the domain CLAP learns from, and the contrastive loss it learns with."""

import math
from dataclasses import replace

import numpy as np
import pytest
import torch

from scoreaware.demo.domain.clap import make_tokenizer, soft_clip_loss
from scoreaware.demo.domain.texts import compatible, concise_caption, describe, verbose_caption
from scoreaware.demo.synth import GENRES, plan_corpus


@pytest.fixture(scope="module")
def specs():
    return plan_corpus(70, 11, degraded=0.3)


def test_every_description_holds_for_its_own_clip(specs):
    rng = np.random.default_rng(0)
    for spec in specs:
        for _ in range(20):
            description = describe(spec, rng)
            assert compatible(description.claims, spec), description


def test_a_claimed_genre_or_quality_rules_out_other_clips(specs):
    spec = next(s for s in specs if s.degradation is None)
    other_genre = replace(spec, genre=next(g for g in GENRES if g != spec.genre))
    assert compatible({"genre": spec.genre}, spec) and not compatible({"genre": spec.genre}, other_genre)
    degraded = replace(spec, degradation="hum", degradation_strength=2)
    assert compatible({"quality": "clean"}, spec) and not compatible({"quality": "clean"}, degraded)
    assert compatible({"genre": spec.genre}, degraded)  # a quality-blind text fits both


def test_captions_name_the_genre(specs):
    for spec in specs[:14]:
        assert spec.genre in verbose_caption(spec) and spec.genre in concise_caption(spec)


def test_soft_clip_loss_has_known_values():
    unit = torch.eye(4)
    identity = torch.eye(4)
    # perfectly aligned pairs at a large scale: the loss vanishes
    assert soft_clip_loss(unit, unit, identity, torch.tensor(100.0)).item() == pytest.approx(0.0, abs=1e-6)
    # identical embeddings: logits are constant, the loss is ln B whatever the targets
    same = torch.nn.functional.normalize(torch.ones(4, 4), dim=-1)
    assert soft_clip_loss(same, same, identity, torch.tensor(10.0)).item() == pytest.approx(math.log(4), abs=1e-6)
    # every text fits every clip: uniform targets, so constant logits are optimal (ln B, not ln 1)
    everything = torch.ones(4, 4)
    assert soft_clip_loss(same, same, everything, torch.tensor(10.0)).item() == pytest.approx(math.log(4), abs=1e-6)


def test_the_clap_tokenizer_knows_the_words_it_was_trained_on(tmp_path):
    # transformers 5 ignores BertTokenizerFast(vocab_file=...) and every word became [UNK]
    texts = ["an energetic rock track with guitar", "a calm ambient piece with pads"] * 20
    tokenizer = make_tokenizer(texts, tmp_path, 200)
    assert tokenizer.unk_token not in tokenizer.tokenize("a calm rock track with pads")

"""The world's captioners: what they learn to write, how their card reads a caption, and the command."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
from click.testing import CliRunner

from scoreaware.cli.main import cli
from scoreaware.demo.world.captioners import (
    CARD,
    INSTRUMENT_WORDS,
    TEMPO_BAND_WORDS,
    _named,
    concise_caption,
    prompt_tags,
    verbose_caption,
)
from scoreaware.demo.world.corpus import plan_corpus


def _spec(**labels):
    return replace(plan_corpus(1, 5)[0], key="D", mode="minor", meter="6/8", **labels)


def test_both_styles_name_the_instrument_and_tempo_band_as_the_card_reads_them():
    for instrument in INSTRUMENT_WORDS:
        for band in TEMPO_BAND_WORDS:
            for style in ("Irish fiddle tune", "Baroque chorale"):
                spec = _spec(instrument=instrument, tempo_band=band, style=style, dynamics="medium")
                for text in (verbose_caption(spec), concise_caption(spec)):
                    assert _named(text, INSTRUMENT_WORDS, instrument), text
                    assert _named(text, TEMPO_BAND_WORDS, band), text


def test_the_card_does_not_credit_a_caption_naming_two_instruments_or_a_style_as_an_instrument():
    assert not _named("A fast piece for violin and flute.", INSTRUMENT_WORDS, "violin")
    # the style "Irish fiddle tune" is not the violin; the dynamics "moderate volume" is not a tempo
    assert _named("A lively Irish fiddle tune played on trumpet.", INSTRUMENT_WORDS, "trumpet")
    assert not _named("An Irish fiddle tune.", INSTRUMENT_WORDS, "violin")
    assert _named("A fast tune played at a moderate volume.", TEMPO_BAND_WORDS, "fast")
    assert not _named("A piece on oboe.", TEMPO_BAND_WORDS, "slow")


def test_prompt_tags_are_true_none_or_another_instruments():
    spec, rng = _spec(instrument="cello"), np.random.default_rng(0)
    kinds = {"true": 0, "none": 0, "other": 0}
    for _ in range(400):
        tags = prompt_tags(spec, rng)
        kinds["none" if tags == "none" else "true" if "cello" in tags else "other"] += 1
    assert 0.3 < kinds["true"] / 400 < 0.5 and 0.3 < kinds["none"] / 400 < 0.5 and 0.12 < kinds["other"] / 400 < 0.28


def test_the_command_trains_both_stages_that_the_caption_engine_loads(tmp_path):
    out = tmp_path / "captioners"
    result = CliRunner().invoke(cli, ["demo", "train-world-captioners", "-o", str(out), "--clips", "6", "--quick",
                                      "--eval-clips", "4", "--json"])
    assert result.exit_code == 0, result.output
    card = json.loads(result.stdout)
    assert card == json.loads((out / CARD).read_text())
    assert card["recipe"]["clips"] == 6 and card["measured"]["clips"] == 4
    assert (out / "qwen2_audio" / "config.json").is_file() and (out / "qwen2" / "config.json").is_file()
    assert 0.0 <= card["measured"]["stage1_instrument_named"] <= 1.0
    # shipped at half the bytes (the caption engine loads them in float32)
    from safetensors.torch import load_file

    assert card["stored"] == "float16"
    assert {str(v.dtype) for v in load_file(out / "qwen2" / "model.safetensors").values()} == {"torch.float16"}


def test_the_shipped_world_captioners_meet_their_card_on_renders_of_an_unseen_seed():
    """36 renders of held-out works with a seed neither their training (309) nor their card (302)
    used, through the caption engine: stage 1 (no tags) names the instrument within sampling noise
    of the card, and stage 2 keeps what stage 1 named."""
    from scoreaware.demo.domain.build import DEFAULT_MODELS
    from scoreaware.demo.world.captioners import WORLD_CAPTIONERS_SEED, measure_world_captioners
    from scoreaware.demo.world.clips import rendered_clips

    folder = DEFAULT_MODELS / "world_captioners"
    card = json.loads((folder / CARD).read_text())
    assert card["recipe"]["seed"] == WORLD_CAPTIONERS_SEED and card["stored"] == "float16"
    found = measure_world_captioners(folder, rendered_clips(36, 311, 10.0, "test"))
    from scipy.stats import binomtest

    measured = card["measured"]
    assert measured["stage1_instrument_named"] >= 0.9  # chance is 1 in 12
    # the card's rate is itself an estimate (120 clips) and sits near 1, where p(1 − p) understates the
    # spread: compare with its 95 % Wilson lower bound, less 2.5 standard errors of 36 clips at that rate
    hits = round(measured["stage1_instrument_named"] * measured["clips"])
    low = binomtest(hits, measured["clips"]).proportion_ci(method="wilson").low
    assert found["stage1_instrument_named"] >= low - 2.5 * np.sqrt(low * (1 - low) / 36), found
    assert found["stage2_instrument_kept"] >= 0.9 and found["stage1_checks_passed"] >= 0.9, found

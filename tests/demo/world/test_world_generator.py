"""The world's base generator: built by its command, shipped as an EMA in float16 beside the models it
was encoded with, and hearing the prompted instrument above chance on sampling seeds its card did not use."""

from __future__ import annotations

import json

import pytest
import torch
from click.testing import CliRunner

from scoreaware.cli.main import cli
from scoreaware.core.locations import path_digest
from scoreaware.demo.domain.build import DEFAULT_MODELS
from scoreaware.demo.world.generator import CARD, FILE, ship_generator

FOLDER = DEFAULT_MODELS / "world_generator"


def test_the_command_ships_an_ema_in_float16_that_names_its_models_as_siblings(tmp_path):
    out, work = tmp_path / "world_generator", tmp_path / "work"
    result = CliRunner().invoke(cli, ["demo", "train-world-generator", "-o", str(out), "--workdir", str(work),
                                      "--clips", "24", "--steps", "4", "--eval-seeds", "0"])
    assert result.exit_code == 0, result.output
    shipped = torch.load(out / FILE, weights_only=True)
    assert set(shipped) == {"ema", "model_config", "norm", "encode", "null", "step", "lineage"}  # no optimizer
    assert shipped["step"] == 4 and all(v.dtype == torch.float16 for v in shipped["ema"].values()
                                        if v.is_floating_point())
    encode = shipped["encode"]
    assert (encode["codec"]["model"], encode["clap_model"], encode["text_encoder"]) == ("../world_codec",
                                                                                       "../world_clap", "t5")
    assert set(encode["model_sha256"]) == {"codec.model", "clap_model", "text_encoder"}
    assert "null" not in encode and shipped["null"]["clap_text"].shape == (128,)  # no path of the build's folder
    assert str(work) not in (out / FILE).read_bytes().decode("latin-1")
    card = json.loads((out / CARD).read_text())
    assert card["recipe"]["steps"] == 4 and "t5" not in card and "measured" not in card
    # a checkpoint encoded with models that are not the embedded default's cannot be shipped beside them
    checkpoint = sorted((work / "runs").glob("*/checkpoints/*.pt"))[-1]
    with pytest.raises(ValueError, match="is not a model of"):
        ship_generator(checkpoint, tmp_path / "elsewhere.pt", tmp_path)


def test_the_shipped_generator_hears_the_instrument_above_chance_on_unseen_sampling_seeds(tmp_path):
    """48 prompts × 1 clip at sampling seed 1000 (the card used seeds 0–95): the instrument rate is at
    least the card's less 2.5 standard errors, and far above chance (1/12)."""
    from scoreaware.demo.tiny_models import make_tiny_t5
    from scoreaware.demo.world.prompts import SHIPPED
    from scoreaware.evaluate.adherence import judge_run
    from scoreaware.train.prompts import read_prompts
    from scoreaware.train.sample import SampleSettings, run_generation

    card = json.loads((FOLDER / CARD).read_text())
    assert card["command"].startswith("scoreaware demo train-world-generator") and card["recipe"]["seed"] == 7
    t5 = make_tiny_t5(tmp_path / "t5", seed=0)  # the stand-in every demo builds: the digest the base recorded
    recorded = torch.load(FOLDER / FILE, weights_only=True)["encode"]["model_sha256"]["text_encoder"]
    assert path_digest(t5) == recorded  # in any environment (HF_HUB_OFFLINE or not): a demo's child run matches it
    run_generation(FOLDER / FILE, read_prompts(SHIPPED), tmp_path / "clips",
                   SampleSettings(steps=25, cfg=2.0, score=None, seconds=10.0, seed=1000), text_encoder=str(t5))
    found = judge_run(tmp_path / "clips", DEFAULT_MODELS / "judge")
    expected = card["measured"]["instrument"]["rate_prompts"]
    slack = 2.5 * (expected * (1 - expected) / 48) ** 0.5
    assert found["instrument"]["rate_prompts"] >= max(expected - slack, 1 / 12 + 0.1), (found["instrument"], expected)

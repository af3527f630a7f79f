"""`demo train-models` itself, with recipes small enough for a test (the numbers mean nothing)."""

import json

from click.testing import CliRunner

from curate.scoring.clap import load_clap
from curate.scoring.reward import load_reward
from scoreaware.cli import cli


def test_train_models_builds_every_part_and_records_its_numbers(tmp_path):
    out = tmp_path / "models"
    result = CliRunner().invoke(cli, ["demo", "train-models", "-o", str(out), "--quick", "--eval-clips", "14"])
    assert result.exit_code == 0, result.output
    record = json.loads((out / "MODELS.json").read_text())
    assert set(record["recipes"]) == {"mert", "clap", "reward", "captioners"}
    assert {"clap", "reward", "captioners"} <= set(record["targets"])
    assert 0 <= record["targets"]["clap"]["auroc"] <= 1 and record["total_mb"] > 0
    for folder in ("clap", "mert", "qwen2_audio", "qwen2"):
        assert (out / folder / "config.json").is_file(), folder
    assert load_reward(out / "reward.pt").prompt_protocol == "caption"
    assert load_clap("transformers", str(out / "clap")).dim == 128
    assert "demo train-models" in result.output and "AUROC" in result.output
    # retraining one part keeps the others and their record
    again = CliRunner().invoke(cli, ["demo", "train-models", "-o", str(out), "--quick", "--only", "reward",
                                     "--eval-clips", "14", "--json"])
    assert again.exit_code == 0, again.output
    record = json.loads(again.stdout)
    assert record["command"].endswith("--only reward") and set(record["recipes"]) == {"mert", "clap", "reward",
                                                                                       "captioners"}


def test_unknown_part_is_a_usage_error(tmp_path):
    result = CliRunner().invoke(cli, ["demo", "train-models", "-o", str(tmp_path), "--only", "vae"])
    assert result.exit_code == 2 and "'vae'" in result.output

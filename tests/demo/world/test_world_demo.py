"""`demo run --world`: the realistic world curated by its own models, checked against its truth."""

from __future__ import annotations

import json

import torch
from click.testing import CliRunner

from scoreaware.cli.main import cli
from scoreaware.demo.world.models import WORLD_MODELS, missing_world_models


def test_demo_run_world_curates_fine_tunes_and_judges(tmp_path):
    """Curation checked against the truth, then the shipped base generator fine-tuned on the curated
    segments (a few steps here) and both judged on the 48 prompts, with the listening page."""
    workdir = tmp_path / "world"
    args = ["demo", "run", "--world", "--workdir", str(workdir), "--clips", "12", "--duration", "11",
            "--train-steps", "3"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    for name in ("corpus/truth.jsonl", "corpus/metadata/descriptions.jsonl", "clap.jsonl.gz", "reward.jsonl.gz",
                 "caption.jsonl.gz", "filter.jsonl.gz", "select.jsonl.gz", "report/index.html", "dataset/README.md",
                 "truth.json", "timing.json"):
        assert (workdir / name).is_file(), name
    found = json.loads((workdir / "truth.json").read_text())
    # 12 clips of 11 s (one segment each) less the planted defects
    assert found["captions"]["label"] == "instrument" and found["captions"]["segments"] >= 8
    assert 0.0 <= found["captions"]["final_caption_names_the_instrument"] <= 1.0
    assert found["clap_auroc_metadata"]["negatives"] >= 1 and found["reward_auroc"]["negatives"] >= 1
    # the world's models, each with the command that rebuilt it
    assert all(f"({name}," in result.output for name in WORLD_MODELS)
    assert "final captions name the right instrument" in result.output and "AUROC" in result.output
    assert {"train fit", "evaluation"} <= set(json.loads((workdir / "timing.json").read_text())["steps"])
    # the generator: a child of the shipped base (matched to the demo's own T5 by digest), both judged
    adherence = json.loads((workdir / "eval" / "adherence.json").read_text())
    for name in ("base", "finetuned"):
        assert adherence[name]["prompts"] == 48 and adherence[name]["clips"] == 48
        assert set(adherence[name]["instrument"]) >= {"rate_prompts", "chance", "ceiling", "halfway", "met"}
    assert adherence["paired"]["instrument"]["n_prompts"] == 48
    child = torch.load(workdir / adherence["finetuned_checkpoint"], weights_only=True)
    assert child["lineage"]["parent"]["sha256"] and child["step"] == 3
    assert "heard as prompted" in result.output and "fine-tuned against base" in result.output
    listen = workdir / "report" / "listen"
    page = (listen / "index.html").read_text()
    assert page.count("<audio") == 8 and page.count("<img") == 4
    assert all((listen / f"p0{i}_{kind}.wav").is_file() for i in range(4) for kind in ("real", "generated"))

    again = CliRunner().invoke(cli, args)
    assert again.exit_code == 0, again.output
    assert "corpus already in" in again.output and "already exported" in again.output
    assert "already trained" in again.output and "48 clips, 0 generated now" in again.output


def test_a_missing_world_model_is_named_with_the_command_that_builds_it(tmp_path):
    (tmp_path / "world_clap").mkdir()
    missing = missing_world_models(tmp_path)
    assert len(missing) == len(WORLD_MODELS)
    assert any("scoreaware demo train-world-captioners -o" in line for line in missing)

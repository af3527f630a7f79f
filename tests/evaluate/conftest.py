"""Shared fixtures of the evaluation tests: one tiny generated run, a reference, its scores."""

import json

import pytest
from click.testing import CliRunner

from scoreaware.cli.main import cli


def invoke(*args):
    result = CliRunner().invoke(cli, [str(a) for a in args])
    assert result.exit_code == 0, result.output
    return result


@pytest.fixture(scope="session")
def eval_prompts(tmp_path_factory):
    path = tmp_path_factory.mktemp("prompts") / "prompts.csv"
    path.write_text("id,prompt\np1,A calm ambient piece with warm pads\np2,An energetic rock track with guitar\n"
                    "p3,Solo piano in a minor key\n")
    return path


@pytest.fixture(scope="session")
def generated(tiny_checkpoint, eval_prompts, tmp_path_factory):
    out = tmp_path_factory.mktemp("gen") / "baseline"
    invoke("eval", "generate", tiny_checkpoint, "--prompts", eval_prompts, "-o", out, "--seeds", "2", "--steps", "3",
           "--seconds", "2", "--batch-size", "4", "--keep-latents")
    return out


@pytest.fixture(scope="session")
def eval_reference(ingested, tiny_clap, tiny_mert, tmp_path_factory):
    out = tmp_path_factory.mktemp("ref") / "ref.npz"
    invoke("eval", "reference", ingested, "-o", out, "--model", tiny_clap, "--mert-model", tiny_mert, "-j", "0")
    return out


@pytest.fixture(scope="session")
def reward_checkpoint(tmp_path_factory):
    import torch

    from scoreaware.curate.scoring.reward import RewardConfig, RewardHead, save_reward
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("reward") / "reward.pt"
    save_reward(path, RewardHead(RewardConfig(mert_dim=1024, hidden=(32,))))
    return path


@pytest.fixture(scope="session")
def scored(generated, eval_reference, reward_checkpoint, tiny_mert):
    result = invoke("eval", "score", generated, "--reference", eval_reference, "--reward", reward_checkpoint,
                    "--mert-model", tiny_mert, "-j", "0", "--bootstrap", "20", "--json")
    return json.loads(result.stdout[result.stdout.index("{"):])

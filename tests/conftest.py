"""Shared fixtures: one tiny synthetic corpus per session, built by the real generator."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("DISABLE_PANDERA_IMPORT_WARNING", "True")

TINY_CLIPS = 8
TINY_DURATION = 12.0
FAULTS = Path(__file__).resolve().parent / "faults"


def kill_after_step_env(step: int) -> dict[str, str]:
    """Environment for a child process that kills itself (SIGKILL) after training step `step`
    and its checkpoint (tests/faults/sitecustomize.py does it; the library has no hook)."""
    path = os.pathsep.join(p for p in (str(FAULTS), os.environ.get("PYTHONPATH", "")) if p)
    return {"PYTHONPATH": path, "SCOREAWARE_TEST_KILL_AFTER_STEP": str(step)}


@pytest.fixture
def kill_after_step():
    """`kill_after_step_env` as a fixture: ``env = kill_after_step(3)``."""
    return kill_after_step_env


@pytest.fixture(scope="session")
def tiny_corpus(tmp_path_factory) -> Path:
    """8 clips × 12 s with every planted metadata defect (scoreaware.demo.synth.plan_corpus), no degradations."""
    from scoreaware.demo.synth import make_corpus

    root = tmp_path_factory.mktemp("corpus")
    make_corpus(root, clips=TINY_CLIPS, duration=TINY_DURATION, seed=0, degraded=0.0)  # degradations: test_synth
    return root


@pytest.fixture(scope="session")
def corpus_metadata(tiny_corpus) -> list[Path]:
    meta = tiny_corpus / "metadata"
    return [meta / "autotagging.tsv", meta / "captions.json", meta / "tracks.csv"]


@pytest.fixture(scope="session")
def ingested(tiny_corpus, corpus_metadata, tmp_path_factory) -> Path:
    """The tiny corpus ingested through the CLI (read-only for tests)."""
    from click.testing import CliRunner

    from scoreaware.cli.main import cli

    out = tmp_path_factory.mktemp("ingested") / "ingest.jsonl.gz"
    args = ["curate", "ingest", str(tiny_corpus / "audio"), "-o", str(out)]
    for meta in corpus_metadata:
        args += ["-m", str(meta)]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    return out


@pytest.fixture(scope="session")
def tiny_clap(tmp_path_factory) -> Path:
    """A random ClapModel + ClapProcessor saved with save_pretrained (loaded by path in tests)."""
    from scoreaware.demo.tiny_models import make_tiny_clap

    return make_tiny_clap(tmp_path_factory.mktemp("tiny_clap"))


@pytest.fixture(scope="session")
def tiny_mert(tmp_path_factory) -> Path:
    """A random 1-layer HubertModel (1024-d, 24 kHz) standing in for MERT."""
    from scoreaware.demo.tiny_models import make_tiny_mert

    return make_tiny_mert(tmp_path_factory.mktemp("tiny_mert"))


@pytest.fixture(scope="session")
def segmented4(ingested, tmp_path_factory) -> Path:
    """The tiny corpus cut into 4 s windows (about 20 cuts)."""
    from click.testing import CliRunner

    from scoreaware.cli.main import cli

    out = tmp_path_factory.mktemp("seg4") / "segment.jsonl.gz"
    result = CliRunner().invoke(cli, ["curate", "segment", str(ingested), "--window", "4", "-o", str(out)])
    assert result.exit_code == 0, result.output
    return out


@pytest.fixture(scope="session")
def clap_scored(segmented4, tiny_clap, tmp_path_factory) -> Path:
    """`segmented4` scored by the tiny CLAP through the CLI."""
    from click.testing import CliRunner

    from scoreaware.cli.main import cli

    out = tmp_path_factory.mktemp("clap") / "clap.jsonl.gz"
    result = CliRunner().invoke(cli, ["curate", "score", "clap", str(segmented4), "--model", str(tiny_clap),
                                      "-o", str(out), "--batch-size", "8"])
    assert result.exit_code == 0, result.output
    return out


@pytest.fixture(scope="session")
def tiny_t5(tmp_path_factory) -> Path:
    """A 1-layer random T5 encoder with the BERT tokenizer (stands in for flan-t5-large)."""
    from scoreaware.demo.tiny_models import make_tiny_t5

    return make_tiny_t5(tmp_path_factory.mktemp("tiny_t5"))


@pytest.fixture(scope="session")
def encoded(clap_scored, tiny_clap, tiny_t5, tiny_mert, tmp_path_factory) -> Path:
    """`clap_scored` encoded for training (mel latents, T5 tokens, REPA clap + frame targets)."""
    from click.testing import CliRunner

    from scoreaware.cli.main import cli

    out = tmp_path_factory.mktemp("encoded") / "encode.jsonl.gz"
    result = CliRunner().invoke(cli, ["train", "encode", str(clap_scored), "-o", str(out), "--text-encoder",
                                      str(tiny_t5), "--clap-model", str(tiny_clap), "--repa", "clap,muq",
                                      "--muq-model", str(tiny_mert)])
    assert result.exit_code == 0, result.output
    return out


@pytest.fixture(scope="session")
def tiny_checkpoint(encoded, tmp_path_factory) -> Path:
    """A tiny FluxAudio trained for a few steps on `encoded` (reward-conditioned, global AdaLN)."""
    from click.testing import CliRunner

    from scoreaware.cli.main import cli

    run_dir = tmp_path_factory.mktemp("runs")
    args = ["train", "fit", "--preset", "tiny", "--set", f"manifest={encoded}", "--set", f"run_dir={run_dir}",
            "--set", "steps=4", "--set", "batch_size=4", "--set", "max_frames=32", "--set", "score_head=global_adaln"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    return sorted(run_dir.glob("*/checkpoints/*.pt"))[-1]

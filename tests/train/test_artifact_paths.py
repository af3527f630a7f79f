"""Artifacts work from any folder: a small pipeline run in one project folder with relative paths,
then resumed, generated, scored and evaluated from ``/`` gives the same outputs with no network
request; a moved model or manifest is one line naming the artifact, the path, its digest and the
way out (never a Hub request, never the working directory)."""

import hashlib
import json
import shutil
import socket
from pathlib import Path

import pytest
from click.testing import CliRunner

from scoreaware.cli.main import cli

SMALL_FIT = ["--set", "steps=4", "--set", "batch_size=4", "--set", "max_frames=32", "--set", "ckpt_every=2"]
GENERATE = ["--seconds", "1", "--steps", "2", "--seed", "3"]


def invoke(*args) -> str:
    result = CliRunner().invoke(cli, [str(a) for a in args])
    assert result.exit_code == 0, result.output
    return result.output


def refused(*args) -> str:
    result = CliRunner().invoke(cli, [str(a) for a in args])
    assert result.exit_code == 1, result.output
    assert "internal error" not in result.output and "Traceback" not in result.output
    return result.output


def digests(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.glob("*.wav"))}


@pytest.fixture
def no_network(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("a network connection was attempted")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")  # a Hub request would be tried (and caught above), not skipped


@pytest.fixture
def project(tiny_corpus, tiny_clap, tiny_t5, tmp_path, monkeypatch) -> Path:
    """The pipeline run inside one folder with every path relative, as a user types it there."""
    root = tmp_path / "project"
    (root / "models").mkdir(parents=True)
    shutil.copytree(tiny_clap, root / "models" / "clap")
    shutil.copytree(tiny_t5, root / "models" / "t5")
    shutil.copytree(tiny_corpus, root / "corpus")
    (root / "prompts.txt").write_text("a calm piano piece\nfast jazz drums\n")
    monkeypatch.chdir(root)
    invoke("curate", "ingest", "corpus/audio", "-o", "m/ingest.jsonl.gz", "-m", "corpus/metadata/tracks.csv",
           "-m", "corpus/metadata/captions.json", "-m", "corpus/metadata/autotagging.tsv")
    invoke("curate", "segment", "m/ingest.jsonl.gz", "--window", "4", "-o", "m/segment.jsonl.gz")
    invoke("curate", "score", "clap", "m/segment.jsonl.gz", "--model", "models/clap", "-o", "m/clap.jsonl.gz")
    invoke("train", "encode", "m/clap.jsonl.gz", "-o", "m/encode.jsonl.gz", "--text-encoder", "models/t5",
           "--clap-model", "models/clap")
    invoke("train", "fit", "--preset", "tiny", "--manifest", "m/encode.jsonl.gz", "--set", "run_dir=runs", *SMALL_FIT)
    invoke("eval", "reference", "m/ingest.jsonl.gz", "-o", "ref.npz", "--model", "models/clap", "-j", "0")
    invoke("eval", "generate", "runs/000-tiny/checkpoints/0000004.pt", "--prompts", "prompts.txt", "-o", "here",
           *GENERATE)
    invoke("eval", "score", "here", "--reference", "ref.npz", "--no-mad", "-j", "0", "--bootstrap", "10")
    return root


def test_a_project_made_in_its_folder_is_resumed_generated_and_scored_from_root_alike(project, no_network,
                                                                                      monkeypatch):
    checkpoint = project / "runs" / "000-tiny" / "checkpoints" / "0000004.pt"
    saved = json.loads((project / "runs" / "000-tiny" / "config.json").read_text())
    assert not Path(saved["manifest"]).is_absolute()  # recorded relative to the run folder

    monkeypatch.chdir("/")
    invoke("train", "fit", "--resume", project / "runs" / "000-tiny", "--set", "steps=6")
    assert (project / "runs" / "000-tiny" / "checkpoints" / "0000006.pt").is_file()
    invoke("eval", "generate", checkpoint, "--prompts", project / "prompts.txt", "-o", project / "there", *GENERATE)
    assert digests(project / "there") == digests(project / "here") and digests(project / "here")
    invoke("eval", "score", project / "there", "--reference", project / "ref.npz", "--no-mad", "-j", "0",
           "--bootstrap", "10")
    here, there = (json.loads((project / name / "eval" / "scores.json").read_text()) for name in ("here", "there"))
    assert here["metrics"] == there["metrics"]


def test_a_moved_model_or_manifest_is_named_with_its_digest_and_never_asked_of_the_hub(project, no_network,
                                                                                       tmp_path, monkeypatch):
    checkpoint = project / "runs" / "000-tiny" / "checkpoints" / "0000004.pt"
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    shutil.copy(checkpoint, elsewhere / "copy.pt")  # a checkpoint copied away from its project
    monkeypatch.chdir(project)  # where "models/t5" would be found, were it read from the working directory
    out = refused("eval", "generate", elsewhere / "copy.pt", "--prompts", "prompts.txt", "-o", tmp_path / "x",
                  *GENERATE)
    assert "text_encoder" in out and "sha256" in out and "--text-encoder" in out
    out = refused("eval", "generate", elsewhere / "copy.pt", "--prompts", "prompts.txt", "-o", tmp_path / "x",
                  *GENERATE, "--text-encoder", "models/t5")
    assert "clap_model" in out and "--clap-model" in out
    invoke("eval", "generate", elsewhere / "copy.pt", "--prompts", "prompts.txt", "-o", tmp_path / "x", *GENERATE,
           "--text-encoder", "models/t5", "--clap-model", "models/clap")

    shutil.move(project / "models", tmp_path / "moved")
    monkeypatch.chdir("/")
    out = refused("eval", "generate", checkpoint, "--prompts", project / "prompts.txt", "-o", tmp_path / "y",
                  *GENERATE)
    assert "models/t5" in out and "sha256" in out and "--text-encoder" in out
    out = refused("train", "fit", "--preset", "tiny", "--manifest", project / "m" / "encode.jsonl.gz", "--set",
                  f"run_dir={tmp_path / 'runs'}", *SMALL_FIT)
    assert "text_encoder" in out and "models/t5" in out and "sha256" in out
    out = refused("eval", "score", project / "here", "--reference", project / "ref.npz", "--overwrite", "--no-mad",
                  "-j", "0")
    assert "models/clap" in out and "sha256" in out and "--clap-model" in out

    shutil.move(project / "m", tmp_path / "m-moved")
    out = refused("train", "fit", "--resume", project / "runs" / "000-tiny", "--set", "steps=8")
    assert "config.manifest" in out and "encode.jsonl.gz" in out and "sha256" in out

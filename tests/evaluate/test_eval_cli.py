"""`eval generate → reference → score → compare` on a tiny checkpoint, and what must hold of it."""

import json

import numpy as np
import pytest
import soundfile as sf
from click.testing import CliRunner
from lhotse import CutSet, Recording
from lhotse.utils import fastcopy

from scoreaware.cli.main import cli
from scoreaware.core.manifests import read_cuts


def invoke(*args):
    result = CliRunner().invoke(cli, [str(a) for a in args])
    assert result.exit_code == 0, result.output
    return result


def test_generate_writes_clips_rows_and_seeds_that_pair(generated):
    rows = [json.loads(line) for line in (generated / "samples.jsonl").read_text().splitlines()]
    assert [(r["prompt_id"], r["seed"]) for r in rows] == [("p1", 0), ("p1", 1), ("p2", 2), ("p2", 3), ("p3", 4),
                                                          ("p3", 5)]  # seed = base + prompt_index·K + k
    for row in rows:
        audio, rate = sf.read(generated / row["path"], always_2d=True)
        assert rate == 44100 and audio.shape[0] == 2 * 44100 and np.isfinite(audio).all()
        assert row["conditioning_text"] == "high quality instrumental music, " + row["prompt"]
        assert len(row["checkpoint_sha256"]) == 64 and row["steps"] == 3 and row["cfg"] == 4.0
        assert np.load(generated / row["latent"]).ndim == 2
    sidecar = json.loads((generated / "samples.provenance.json").read_text())
    assert sidecar["clips"] == 6 and sidecar["models"]["clap_weights"]


def test_same_checkpoint_prompts_and_seeds_give_bit_identical_wavs(tiny_checkpoint, eval_prompts, generated, tmp_path):
    again = tmp_path / "again"
    invoke("eval", "generate", tiny_checkpoint, "--prompts", eval_prompts, "-o", again, "--seeds", "2", "--steps", "3",
           "--seconds", "2", "--batch-size", "4")
    for wav in generated.glob("*.wav"):
        assert (again / wav.name).read_bytes() == wav.read_bytes(), wav.name


def test_generation_resumes_per_clip_and_refuses_other_settings(tiny_checkpoint, eval_prompts, generated, tmp_path):
    out = tmp_path / "resumed"
    args = ["eval", "generate", tiny_checkpoint, "--prompts", eval_prompts, "-o", out, "--seeds", "2", "--steps", "3",
            "--seconds", "2", "--batch-size", "4"]
    invoke(*args)
    table = out / "samples.jsonl"
    lines = table.read_text().splitlines()
    table.write_text("\n".join(lines[:2]) + "\n")  # as if killed after two clips
    (out / "samples.provenance.json").unlink()
    refused = CliRunner().invoke(cli, [str(a) for a in args])
    assert refused.exit_code == 1 and "--resume" in refused.output
    result = invoke(*args, "--resume")
    assert "4 generated now" in result.output
    assert len(table.read_text().splitlines()) == 6
    for wav in generated.glob("*.wav"):  # the same clips as an uninterrupted run (other batches: float rounding)
        assert np.allclose(sf.read(out / wav.name)[0], sf.read(wav)[0], atol=1e-4), wav.name
    other = CliRunner().invoke(cli, [str(a) for a in args[:-2]] + ["--batch-size", "4", "--steps", "5"])
    assert other.exit_code == 1 and "steps: 3 → 5" in other.output


def test_train_sample_is_the_same_implementation(tiny_checkpoint, eval_prompts, generated, tmp_path):
    out = tmp_path / "sample"
    invoke("train", "sample", tiny_checkpoint, "--prompts", eval_prompts, "-o", out, "--steps", "3", "--seconds", "2",
           "--batch-size", "4")
    rows = [json.loads(line) for line in (out / "samples.jsonl").read_text().splitlines()]
    assert [r["seed"] for r in rows] == [0, 1, 2]  # one clip per prompt: seed = base + prompt index
    assert (out / "p1_s0.wav").read_bytes() == (generated / "p1_s0.wav").read_bytes()


def test_cfg_branches_in_one_forward_equal_two_forwards(tiny_checkpoint):
    import torch

    from scoreaware.train.sample import Generator

    generator = Generator(tiny_checkpoint)
    cond = generator.conditioning(["a calm piece", "a loud piece"], 5.0)
    null = generator.conditioning(["noise"] * 2, None)
    x = torch.randn(2, 12, generator.model.config.latent_channels, generator=torch.Generator().manual_seed(0))
    t = torch.full((2,), 0.5)
    with torch.no_grad():
        joint = generator.model.forward_with_cfg(x, t, cond, null, 4.0)
        separate = 4.0 * generator.model(x, t, cond) + (1 - 4.0) * generator.model(x, t, null)
    assert torch.allclose(joint, separate, atol=1e-5)


def test_reference_stores_embeddings_stats_and_fingerprint(eval_reference, tiny_clap):
    from scoreaware.evaluate.embeddings import load_reference

    sets, meta = load_reference(eval_reference)
    clap = sets["clap"]
    assert clap.embeddings.shape == (6, 512) and clap.fingerprint["policy"] == "first"
    assert clap.fingerprint["sampling_rate"] == 48000 and clap.fingerprint["window"] == 480000
    assert sets["mert_all"].fingerprint["layers"] == "all" and sets["mert_last"].embeddings.shape == (6, 1024)
    with np.load(eval_reference) as data:
        assert np.allclose(data["clap__mean"], clap.embeddings.mean(0), atol=1e-6)


def test_score_reports_every_metric(scored):
    metrics = scored["metrics"]
    assert set(metrics) >= {"fad_clap", "kad_clap", "clap_score", "reward", "fad_mert", "mad"}
    assert metrics["fad_clap"]["n"] == 6 and metrics["fad_clap"]["n_reference"] == 6
    assert metrics["fad_clap"]["ci"][0] <= metrics["fad_clap"]["ci"][1]
    assert any("singular" in w for w in scored["warnings"])  # 6 clips in 512 dimensions


def test_clip_scores_equal_what_curation_gives_for_the_same_audio(generated, scored, tiny_clap, tiny_mert,
                                                                   reward_checkpoint, tmp_path):
    rows = [json.loads(line) for line in (generated / "samples.jsonl").read_text().splitlines()]
    cuts = [fastcopy(Recording.from_file(generated / r["path"], recording_id=r["id"]).to_cut(),
                     custom={"caption": r["prompt"]}) for r in rows]
    manifest = tmp_path / "clips.jsonl.gz"
    CutSet.from_cuts(cuts).to_file(manifest)
    invoke("curate", "score", "clap", manifest, "--model", tiny_clap, "--policy", "first", "-j", "0",
           "-o", tmp_path / "clap.jsonl.gz")
    invoke("curate", "score", "reward", tmp_path / "clap.jsonl.gz", "--checkpoint", reward_checkpoint,
           "--mert-model", tiny_mert, "-j", "0", "-o", tmp_path / "reward.jsonl.gz")
    curated = {c.id: c.custom for c in read_cuts(tmp_path / "reward.jsonl.gz")}
    from scoreaware.evaluate.results import read_clips_csv

    for clip in read_clips_csv(generated / "eval" / "clips.csv"):
        assert clip["clap_score"] == curated[clip["id"]]["clap_score"]
        assert clip["reward"] == curated[clip["id"]]["reward"]


def test_fad_cli_on_npy_npz_and_manifests(generated, scored, eval_reference, tmp_path):
    from scoreaware.evaluate.embeddings import load_reference

    clap = load_reference(eval_reference)[0]["clap"].embeddings
    np.save(tmp_path / "a.npy", clap)
    result = invoke("eval", "fad", tmp_path / "a.npy", eval_reference, "--json")
    assert json.loads(result.stdout)["fad"] == pytest.approx(0.0, abs=1e-6)
    result = invoke("eval", "fad", generated / "eval" / "clap.jsonl.gz", eval_reference, "--json")
    assert json.loads(result.stdout)["fad"] == pytest.approx(scored["metrics"]["fad_clap"]["fad"], rel=1e-9)


def test_fad_refuses_embeddings_of_another_model(generated, scored, ingested, tmp_path):
    from scoreaware.demo.tiny_models import make_tiny_clap

    other = make_tiny_clap(tmp_path / "other_clap", size="small")
    invoke("eval", "reference", ingested, "-o", tmp_path / "other.npz", "--model", other, "-j", "0")
    result = CliRunner().invoke(cli, ["eval", "fad", str(generated / "eval" / "clap.jsonl.gz"),
                                      str(tmp_path / "other.npz")])
    assert result.exit_code == 1 and "not made the same way" in result.output and "weights" in result.output


def test_a_reference_made_with_a_relative_model_path_scores_from_anywhere_and_a_moved_model_is_named(
        ingested, tiny_clap, generated, tmp_path, monkeypatch):
    """`eval reference --model models/clap` (relative, as typed in a project folder) records where the
    model is; scoring from another folder finds it; once the folder is moved, scoring stops at once
    with one line naming the reference, the path and the override (never a Hub request)."""
    import shutil
    import socket

    project = tmp_path / "project"
    (project / "models").mkdir(parents=True)
    shutil.copytree(tiny_clap, project / "models" / "clap")
    monkeypatch.chdir(project)
    invoke("eval", "reference", ingested, "-o", "ref.npz", "--model", "models/clap", "-j", "0")
    run = tmp_path / "run"
    shutil.copytree(generated, run, ignore=shutil.ignore_patterns("eval"))

    def no_network(*args, **kwargs):
        raise AssertionError("a network connection was attempted")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    invoke("eval", "score", run, "--reference", project / "ref.npz", "--no-mad", "-j", "0", "--bootstrap", "10")
    shutil.move(project / "models", tmp_path / "moved")
    result = CliRunner().invoke(cli, ["eval", "score", str(run), "--reference", str(project / "ref.npz"), "--no-mad",
                                      "-j", "0", "--overwrite"])
    assert result.exit_code == 1 and "models/clap" in result.output and "--clap-model" in result.output
    assert "internal error" not in result.output and "Traceback" not in result.output
    again = CliRunner().invoke(cli, ["eval", "score", str(run), "--reference", str(project / "ref.npz"), "--no-mad",
                                     "-j", "0", "--overwrite", "--clap-model", str(tmp_path / "moved" / "clap")])
    assert again.exit_code == 0, again.output


def test_a_clip_with_a_non_finite_embedding_is_set_aside_not_fatal(scored, generated, tmp_path):
    """One cut whose stored CLAP embedding holds NaN: the set is read without it and its id is
    returned for quarantine (eval score then scores the others and names it)."""
    from lhotse.utils import fastcopy

    from scoreaware.core.arrays import ArrayStore
    from scoreaware.evaluate.embeddings import EmbeddingError, finite_manifest_embeddings

    cuts = list(read_cuts(generated / "eval" / "clap.jsonl.gz"))
    store = ArrayStore(tmp_path / "arrays")
    broken = np.full_like(cuts[0].load_custom("clap_audio_emb"), np.nan)
    cuts[0] = fastcopy(cuts[0], custom={**cuts[0].custom, "clap_audio_emb": store.put("clap", cuts[0].id, broken)})
    manifest = tmp_path / "clap.jsonl.gz"
    CutSet.from_cuts(cuts).to_file(manifest)
    found, dropped = finite_manifest_embeddings(manifest)
    assert dropped == [cuts[0].id] and len(found.ids) == len(cuts) - 1 and np.isfinite(found.embeddings).all()
    nothing = [fastcopy(c, custom={**c.custom, "clap_audio_emb": store.put("clap", c.id + "x", broken)}) for c in cuts]
    CutSet.from_cuts(nothing).to_file(tmp_path / "none.jsonl.gz")
    with pytest.raises(EmbeddingError, match="no cut has a finite clap embedding"):
        finite_manifest_embeddings(tmp_path / "none.jsonl.gz")

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from click.testing import CliRunner

from scoreaware.cli.main import cli
from scoreaware.core.manifests import read_cuts


def fit(*sets, resume=None):
    args = ["train", "fit"] + (["--resume", str(resume)] if resume else ["--preset", "tiny"])
    for s in sets:
        args += ["--set", s]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    return Path(result.output.split("→ ")[-1].split(" (")[0].strip())


def test_encode_writes_latents_tokens_targets_and_stats(encoded):
    cut = next(iter(read_cuts(encoded)))
    latent = cut.load_custom("latent")
    assert latent.shape == (cut.custom["latent_frames"], 64)
    assert cut.load_custom("text_tokens").shape[1] == 32
    assert cut.load_custom("clap_text_emb").shape == (512,)
    assert cut.load_custom("repa_frames").shape[1] == 1024
    info = json.loads((encoded.parent / "encode.encode.json").read_text())
    assert len(info["latent_stats"]["mean"]) == 64 and info["latent_stats"]["frames"] > 0
    assert info["repa"] == {"clap": ["global", 512], "muq": ["frames", 1024]}
    assert info["clap_model"] and info["text_dim"] == 32


def test_loss_goes_down_on_a_tiny_overfit_set(encoded, tmp_path):
    run = fit(f"manifest={encoded}", f"run_dir={tmp_path}", "steps=80", "lr=3e-3", "log_every=5", "batch_size=4",
              "text_dropout=0", "score_dropout=0", "timesteps=uniform", "max_frames=64", f"val_manifest={encoded}")
    history = json.loads((run / "history.json").read_text())
    val = [h["val_flow"] for h in history if "val_flow" in h]  # fixed t grid and noise: comparable
    assert len(val) == 2 and val[-1] < 0.8 * val[0], val  # untrained (≈ 2: predicts 0) vs trained
    assert (run / "loss.png").read_bytes()[:4] == b"\x89PNG" and any((run / "tb").iterdir())
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(run / "tb")).Reload()
    scalars = events.Tags()["scalars"]
    assert {"train/loss", "val/val_flow", "val/val_ema_flow"} <= set(scalars), scalars
    logged = [(e.step, e.value) for e in events.Scalars("val/val_flow")]
    assert [s for s, _ in logged] == [0, 80] and np.allclose([v for _, v in logged], val, atol=1e-5)
    config = json.loads((run / "config.json").read_text())
    assert config["steps"] == 80 and config["model"] == "tiny"
    checkpoint = torch.load(sorted((run / "checkpoints").glob("*.pt"))[-1], weights_only=False)
    assert {"model", "ema", "opt", "config", "step", "rng", "sampler", "norm"} <= checkpoint.keys()


@pytest.mark.parametrize("options", [
    ("timesteps=beta", "score_head=global_adaln", "repa=clap,muq"),
    ("timesteps=logit_normal", "score_head=token"),
])
def test_resume_reproduces_the_uninterrupted_trajectory(encoded, tmp_path, options):
    common = [f"manifest={encoded}", "batch_size=4", "max_frames=32", "log_every=1", "ckpt_every=5", *options]
    full = fit(*common, f"run_dir={tmp_path / 'a'}", "steps=10")
    half = fit(*common, f"run_dir={tmp_path / 'b'}", "steps=5")
    resumed = fit("steps=10", resume=half)
    assert resumed == half
    shorter = CliRunner().invoke(cli, ["train", "fit", "--resume", str(half), "--set", "steps=7"])
    assert shorter.exit_code == 1 and "has trained 10 steps; steps=7 cannot shorten it" in shorter.output
    a = [h["loss"] for h in json.loads((full / "history.json").read_text())]
    b = [h["loss"] for h in json.loads((resumed / "history.json").read_text())]
    assert len(a) == len(b) == 10
    assert np.allclose(a, b, rtol=1e-5, atol=1e-6), (a, b)


def test_sample_writes_loudness_normalized_wavs(encoded, tmp_path):
    run = fit(f"manifest={encoded}", f"run_dir={tmp_path}", "steps=3", "batch_size=4", "max_frames=32",
              "score_head=input_add")
    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text(json.dumps({"prompt": "a calm piano piece"}) + "\n"
                       + json.dumps({"id": "rock", "prompt": "energetic rock"}) + "\n")
    out = tmp_path / "wav"
    result = CliRunner().invoke(cli, ["train", "sample", str(run / "checkpoints" / "0000003.pt"), "--prompts",
                                      str(prompts), "-o", str(out), "--steps", "4", "--seconds", "2"])
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in (out / "samples.jsonl").read_text().splitlines()]
    assert [r["prompt_id"] for r in rows] == ["0001", "rock"]  # clip ids add the sample index: 0001_s0
    for row in rows:
        audio, rate = sf.read(out / row["path"], always_2d=True)
        assert rate == 44100 and audio.shape[0] == 2 * 44100
        assert np.abs(audio).max() <= 0.99
        import pyloudnorm as pyln

        lufs = pyln.Meter(rate).integrated_loudness(audio.mean(1))
        peak_limited = np.isclose(np.abs(audio).max(), 0.95, atol=1e-3)
        assert peak_limited or lufs == pytest.approx(-16.5, abs=0.2)


def test_torchrun_two_processes_complete(encoded, tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", "29533",
         "-m", "scoreaware", "train", "fit", "--preset", "tiny", "--set", f"manifest={encoded}",
         "--set", f"run_dir={tmp_path}", "--set", "steps=4", "--set", "batch_size=4", "--set", "max_frames=32",
         "--set", "ckpt_every=2", "--set", f"val_manifest={encoded}", "--set", "val_every=2"],
        capture_output=True, text=True, env=env, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    run = next(tmp_path.iterdir())
    assert sorted(p.name for p in (run / "checkpoints").glob("*.pt")) == ["0000002.pt", "0000004.pt"]
    history = json.loads((run / "history.json").read_text())
    assert [h["step"] for h in history if "val_flow" in h] == [0, 2, 4]  # rank 0 validated, nobody hung
    assert all("val_ema_flow" in h for h in history if "val_flow" in h)  # the EMA weights are validated too
    state = torch.load(run / "checkpoints" / "0000004.pt", weights_only=True)
    assert len(state["rng"]) == 2  # every rank's RNG, so a resumed run does not draw the same noise twice
    assert not torch.equal(state["rng"][0]["objective"], state["rng"][1]["objective"])


def test_ddp_gradients_equal_single_process_gradients(encoded, tmp_path):
    script = Path(__file__).with_name("ddp_gradients.py")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
                             "--master_port", "29534", str(script), str(encoded), str(tmp_path / "ddp.pt")],
                            capture_output=True, text=True, env=env, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    single = subprocess.run([sys.executable, str(script), str(encoded), str(tmp_path / "single.pt")],
                            capture_output=True, text=True, env=env, timeout=600)
    assert single.returncode == 0, single.stderr[-3000:]
    ddp, one = torch.load(tmp_path / "ddp.pt"), torch.load(tmp_path / "single.pt")
    assert ddp.keys() == one.keys() and len(one) > 10
    for name in one:
        assert torch.allclose(ddp[name], one[name], atol=1e-6, rtol=1e-4), name


def test_resume_refuses_a_manifest_that_changed(encoded, tmp_path):
    import gzip
    import shutil

    # a copy beside the original (its array paths are relative to this folder), with its encode info
    manifest = encoded.with_name(f"resume-{tmp_path.name}.jsonl.gz")
    shutil.copyfile(encoded, manifest)
    shutil.copyfile(encoded.with_name("encode.encode.json"), manifest.with_name(f"resume-{tmp_path.name}.encode.json"))
    run = fit(f"manifest={manifest}", f"run_dir={tmp_path / 'runs'}", "steps=4", "ckpt_every=2", "batch_size=4",
              "max_frames=32")
    lines = gzip.open(manifest, "rt").read().splitlines()
    with gzip.open(manifest, "wt") as f:  # the same cuts, shuffled: a resume would train other steps
        f.write("\n".join(reversed(lines)) + "\n")
    refused = CliRunner().invoke(cli, ["train", "fit", "--resume", str(run), "--set", "steps=6"])
    assert refused.exit_code == 1 and "changed since" in refused.output and str(manifest) in refused.output
    assert "internal error" not in refused.output


def edited_copy(encoded, tmp_path, edit) -> Path:
    """A copy of `encoded` beside it (array paths stay valid) with `edit(row)` applied to each row."""
    import gzip
    import shutil

    manifest = encoded.with_name(f"edited-{tmp_path.name}.jsonl.gz")
    shutil.copyfile(encoded.with_name("encode.encode.json"), manifest.with_name(f"edited-{tmp_path.name}.encode.json"))
    rows = [json.loads(line) for line in gzip.open(encoded, "rt")]
    for index, row in enumerate(rows):
        edit(index, row)
    with gzip.open(manifest, "wt") as f:
        f.write("".join(json.dumps(row) + "\n" for row in rows))
    return manifest


def test_an_unscored_cut_in_a_beta_run_is_refused_unless_said(encoded, tmp_path):
    """S̃ comes from the CLAP score; a cut without one would silently train with uniform t."""
    manifest = edited_copy(encoded, tmp_path, lambda i, row: row["custom"].pop("clap_score") if i == 2 else None)
    unscored_id = [c.id for c in read_cuts(manifest)][2]
    args = ["train", "fit", "--preset", "tiny", "--set", f"manifest={manifest}", "--set", f"run_dir={tmp_path}",
            "--set", "steps=2", "--set", "batch_size=4", "--set", "max_frames=32", "--set", "timesteps=beta"]
    refused = CliRunner().invoke(cli, args)
    assert refused.exit_code == 1 and unscored_id in refused.output and "unscored=uniform" in refused.output
    assert CliRunner().invoke(cli, [*args[:-2], "--set", "timesteps=logit_normal"]).exit_code == 0  # t ignores S̃
    run = fit(*[a for a in args[4:] if a != "--set"], "unscored=uniform")
    assert json.loads((run / "config.json").read_text())["unscored"] == "uniform"  # the choice is recorded


def test_a_score_group_without_statistics_is_refused_naming_the_cut(encoded, tmp_path):
    """A child inherits its parent's per-group score statistics; a group the parent never saw
    has none, and used to be normalized with (0, 1) without a word."""
    from scoreaware.train.data import Normalization

    def grouped(i, row):
        row["custom"]["reward"] = float(i)
        row["custom"]["source"] = "jamendo" if i % 2 else "fma"

    manifest = edited_copy(encoded, tmp_path, grouped)
    parent = fit(f"manifest={manifest}", f"run_dir={tmp_path / 'parent'}", "steps=2", "batch_size=4",
                 "max_frames=32", "score_head=global_adaln", "score_group_by=source")
    checkpoint = sorted((parent / "checkpoints").glob("*.pt"))[-1]
    norm = Normalization.from_dict(torch.load(checkpoint, weights_only=True)["norm"])
    assert set(norm.score_stats) == {"fma", "jamendo"}
    newcomer = edited_copy(encoded, tmp_path / "new", lambda i, row: grouped(i, row) or (
        row["custom"].update(source="musiccaps") if i == 3 else None))
    new_id = [c.id for c in read_cuts(newcomer)][3]
    refused = CliRunner().invoke(cli, ["train", "fit", "--preset", "tiny", "--set", f"manifest={newcomer}",
                                       "--set", f"run_dir={tmp_path / 'child'}", "--set", "steps=2", "--set",
                                       "batch_size=4", "--set", "max_frames=32", "--set", "score_head=global_adaln",
                                       "--set", "score_group_by=source", "--set", f"init_from={checkpoint}"])
    assert refused.exit_code == 1 and new_id in refused.output and "'musiccaps'" in refused.output
    assert "internal error" not in refused.output
    cut = next(c for c in read_cuts(newcomer) if c.id == new_id)
    with pytest.raises(ValueError, match="no normalization statistics"):
        norm.score(cut)


def test_too_few_cuts_for_a_batch_is_a_clear_error(encoded, tmp_path):
    result = CliRunner().invoke(cli, ["train", "fit", "--preset", "tiny", "--set", f"manifest={encoded}",
                                      "--set", f"run_dir={tmp_path}", "--set", "batch_size=500"])
    assert result.exit_code == 1 and "yields no full batch of 500 cuts" in result.output


@pytest.fixture(scope="module")
def demucs_repo(tmp_path_factory):
    """A tiny random Hybrid Demucs saved the way Demucs publishes models (`{sig}-{sha}.th`)."""
    from demucs.hdemucs import HDemucs
    from demucs.states import save_with_checksum

    torch.manual_seed(0)
    model = HDemucs(sources=["drums", "bass", "other", "vocals"], channels=4)  # = demucs_unittest
    args, kwargs = model._init_args_kwargs
    repo = tmp_path_factory.mktemp("demucs")
    save_with_checksum({"klass": HDemucs, "args": args, "kwargs": kwargs, "state": model.state_dict(),
                        "training_args": {}}, repo / "tiny.th")
    return repo


def test_demucs_instrumental_pass_loads_a_local_model(demucs_repo):
    from scoreaware.train.sample import demucs_instrumental

    rate = 44100
    t = np.arange(3 * rate) / rate
    mono = (0.3 * np.sin(2 * np.pi * 220 * t) * (1 + np.sin(2 * np.pi * 2 * t)))[None].astype(np.float32)
    out = demucs_instrumental(mono, rate, "tiny", passes=2, repo=str(demucs_repo))
    assert out.shape == (2, mono.shape[1]) and np.isfinite(out).all()
    assert np.abs(out).max() == pytest.approx(0.95, abs=1e-4)
    assert not np.allclose(out[0], mono[0] * 0.95 / np.abs(mono).max(), atol=1e-2)  # the model changed it


def test_sample_with_demucs_from_a_local_repo(encoded, demucs_repo, tmp_path):
    run = fit(f"manifest={encoded}", f"run_dir={tmp_path}", "steps=2", "batch_size=4", "max_frames=32")
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("a calm piano piece\n")
    out = tmp_path / "wav"
    args = ["train", "sample", str(run / "checkpoints" / "0000002.pt"), "--prompts", str(prompts), "-o", str(out),
            "--steps", "2", "--seconds", "2", "--demucs", "tiny", "--demucs-passes", "1"]
    result = CliRunner().invoke(cli, [*args, "--demucs-repo", str(demucs_repo)])
    assert result.exit_code == 0, result.output
    audio, rate = sf.read(next(out.glob("*.wav")), always_2d=True)
    assert rate == 44100 and audio.shape == (2 * 44100, 2) and np.isfinite(audio).all()
    result = CliRunner().invoke(cli, [*args, "--demucs", "missing", "--demucs-repo", str(demucs_repo)])
    assert result.exit_code != 0 and "missing" in result.output


def test_repa_clap_target_takes_the_clap_models_width(segmented4, tiny_t5, tmp_path):
    # The shipped domain CLAP projects to 128 dims, not the released models' 512: the REPA
    # projector must be sized from the model, or validation fails on the first batch.
    from scoreaware.demo.tiny_models import make_tiny_clap

    clap = make_tiny_clap(tmp_path / "clap128", projection_dim=128)
    scored, out = tmp_path / "clap.jsonl.gz", tmp_path / "encode.jsonl.gz"
    for args in (["curate", "score", "clap", str(segmented4), "--model", str(clap), "-o", str(scored), "-j", "0"],
                 ["train", "encode", str(scored), "-o", str(out), "--text-encoder", str(tiny_t5), "--clap-model",
                  str(clap), "--repa", "clap"]):
        result = CliRunner().invoke(cli, args)
        assert result.exit_code == 0, result.output
    info = json.loads((tmp_path / "encode.encode.json").read_text())
    assert info["repa"] == {"clap": ["global", 128]}
    run = fit(f"manifest={out}", f"run_dir={tmp_path / 'runs'}", "steps=2", "batch_size=4", "max_frames=32",
              "repa=clap", f"val_manifest={out}", "val_every=2")
    assert [h["step"] for h in json.loads((run / "history.json").read_text()) if "val_flow" in h] == [0, 2]


def test_relative_model_folders_resolve_against_the_files_that_record_them(clap_scored, tiny_t5, tiny_clap, tmp_path,
                                                                          monkeypatch):
    project = tmp_path / "project"
    (project / "models").mkdir(parents=True)
    (project / "models" / "t5").symlink_to(tiny_t5, target_is_directory=True)
    (project / "models" / "clap").symlink_to(tiny_clap, target_is_directory=True)
    monkeypatch.chdir(project)  # the user names the models relative to where they stand
    encoded = project / "data" / "enc.jsonl.gz"
    result = CliRunner().invoke(cli, ["train", "encode", str(clap_scored), "-o", str(encoded), "--text-encoder",
                                      "models/t5", "--clap-model", "models/clap"])
    assert result.exit_code == 0, result.output
    info = json.loads((project / "data" / "enc.encode.json").read_text())
    assert info["text_encoder"] == "../models/t5" and info["clap_model"] == "../models/clap"  # relative to the file
    run = fit(f"manifest={encoded}", f"run_dir={project / 'runs'}", "steps=2", "batch_size=2", "max_frames=16")
    checkpoint = sorted((run / "checkpoints").glob("*.pt"))[-1]
    prompts = project / "prompts.txt"
    prompts.write_text("A calm piece\n")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)  # another working directory: the recorded paths still resolve
    args = ["eval", "generate", str(checkpoint), "--prompts", str(prompts), "--steps", "2", "--seconds", "1"]
    done = CliRunner().invoke(cli, [*args, "-o", str(elsewhere / "clips")])
    assert done.exit_code == 0, done.output
    (project / "models" / "t5").rename(project / "models" / "t5-moved")
    missing = CliRunner().invoke(cli, [*args, "-o", str(elsewhere / "again")])
    assert missing.exit_code == 1 and "encode.text_encoder" in missing.output, missing.output
    assert "internal error" not in missing.output


@pytest.fixture(scope="module")
def vae_encoded(clap_scored, tiny_clap, tiny_t5, tmp_path_factory) -> Path:
    """`clap_scored` encoded with a (barely trained) mel-vae codec."""
    from scoreaware.demo.domain.codec import CodecRecipe, train_codec

    folder = tmp_path_factory.mktemp("melvae")
    train_codec(folder / "codec", CodecRecipe(clips=7, steps=2, batch_size=2), log=lambda _: None)
    out = folder / "encode.jsonl.gz"
    result = CliRunner().invoke(cli, ["train", "encode", str(clap_scored), "-o", str(out), "--codec", "mel-vae",
                                      "--codec-model", str(folder / "codec"), "--text-encoder", str(tiny_t5),
                                      "--clap-model", str(tiny_clap)])
    assert result.exit_code == 0, result.output
    return out


def test_mel_vae_latents_record_their_rate_and_train(vae_encoded, tmp_path):
    info = json.loads((vae_encoded.parent / "encode.encode.json").read_text())
    assert info["codec"]["codec"] == "mel-vae" and info["latent_channels"] == 32
    assert info["latent_rate"] == pytest.approx(22050 / 256 / 4)
    cut = next(iter(read_cuts(vae_encoded)))
    assert cut.load_custom("latent").shape == (cut.custom["latent_frames"], 32)
    assert cut.custom["latent_frames"] == pytest.approx(cut.duration * info["latent_rate"], abs=2)
    run = fit(f"manifest={vae_encoded}", f"run_dir={tmp_path}", "steps=2", "batch_size=4", "max_frames=16")
    assert run.exists()


def test_a_checkpoint_refuses_latents_of_another_codec(encoded, vae_encoded, tmp_path):
    mel = fit(f"manifest={encoded}", f"run_dir={tmp_path / 'mel'}", "steps=2", "batch_size=4", "max_frames=16")
    vae = fit(f"manifest={vae_encoded}", f"run_dir={tmp_path / 'vae'}", "steps=2", "batch_size=4", "max_frames=16")
    for run, manifest in ((vae, encoded), (mel, vae_encoded)):
        parent = sorted((run / "checkpoints").glob("*.pt"))[-1]
        result = CliRunner().invoke(cli, ["train", "fit", "--preset", "tiny", "--set", f"manifest={manifest}",
                                          "--set", f"run_dir={tmp_path / 'child'}", "--set", f"init_from={parent}",
                                          "--set", "steps=2", "--set", "batch_size=4"])
        assert result.exit_code == 1, result.output
        assert "codec: parent" in result.output and str(manifest) in result.output, result.output
        assert "internal error" not in result.output


def test_a_run_killed_before_its_first_checkpoint_is_replaced_not_doubled(encoded, tmp_path):
    """An arm × seed killed before its first checkpoint leaves a run folder with nothing to resume;
    the restart trains in its place, so one arm × seed is one run folder (one TensorBoard run)."""
    from scoreaware.train.fit import fit_or_resume

    root = tmp_path / "runs"
    orphan = root / "000-tiny"
    (orphan / "checkpoints").mkdir(parents=True)
    (orphan / "tb").mkdir()
    overrides = (f"manifest={encoded}", "steps=2", "batch_size=2", "max_frames=16", "ckpt_every=2",
                 f"run_dir={root}")
    checkpoint = fit_or_resume(root, overrides, preset="tiny", log=lambda _: None)
    assert sorted(p.name for p in root.iterdir()) == [checkpoint.parent.parent.name]
    assert checkpoint.is_file()


@pytest.mark.parametrize("setting, message", [("steps=0", "steps = 0: must be ≥ 1"),
                                              ("steps=-5", "steps = -5: must be ≥ 1"),
                                              ("batch_size=0", "batch_size = 0: must be ≥ 1"),
                                              ("max_frames=0", "max_frames = 0: must be ≥ 1"),
                                              ("lr=0", "lr = 0.0: must be > 0")])
def test_out_of_range_settings_are_refused_before_training(encoded, tmp_path, setting, message):
    result = CliRunner().invoke(cli, ["train", "fit", "--preset", "tiny", "--manifest", str(encoded), "--set",
                                      f"run_dir={tmp_path}", "--set", setting])
    assert result.exit_code == 2 and message in result.output and "internal error" not in result.output
    assert not list(tmp_path.iterdir())


def test_a_child_of_a_parent_that_never_saw_scores_takes_its_own_clap_range_and_score_statistics(encoded, tmp_path):
    """The world's base generator trained without CLAP scores or rewards: its recorded CLAP range is the
    placeholder (0, 1), which would read raw cosines as S̃ and flatten the Beta schedule of every child."""
    from scoreaware.train.data import compute_normalization

    bare = edited_copy(encoded, tmp_path, lambda i, row: [row["custom"].pop(k, None) for k in ("clap_score", "reward")])
    run = fit(f"manifest={bare}", f"run_dir={tmp_path / 'parent'}", "steps=1", "batch_size=4", "max_frames=32",
              "timesteps=uniform", "unscored=uniform")
    parent = sorted((run / "checkpoints").glob("*.pt"))[-1]
    assert torch.load(parent, weights_only=True)["norm"]["clap_range"] == (0.0, 1.0)
    child = fit(f"manifest={encoded}", f"run_dir={tmp_path / 'child'}", "steps=1", "batch_size=4", "max_frames=32",
                "timesteps=beta", "score_head=global_adaln", "init_new_head=true", f"init_from={parent}")
    norm = torch.load(sorted((child / "checkpoints").glob("*.pt"))[-1], weights_only=True)["norm"]
    own = compute_normalization(encoded, "reward", "", "clap_score")
    assert norm["clap_range"] == pytest.approx(own.clap_range) and norm["clap_range"] != (0.0, 1.0)
    assert norm["score_stats"] == {g: pytest.approx(v) for g, v in own.score_stats.items()}
    assert norm["latent_mean"] == torch.load(parent, weights_only=True)["norm"]["latent_mean"]  # the parent's space

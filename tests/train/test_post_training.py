"""Post-training: inheritance from a parent, cross-loading, CRPO and expert iteration on toys whose
preferred property is known, and the drivers' resume."""

import gzip
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from lhotse.utils import fastcopy

from scoreaware.cli.main import cli
from scoreaware.core.arrays import ArrayStore
from scoreaware.core.manifests import read_cuts
from scoreaware.core.output import StageOutput
from scoreaware.schemas.validation import validate_manifest
from scoreaware.train.codecs import MelCodec

BAND = slice(40, 64)  # high mel channels: the "preferred property" of the toys


def invoke(*args):
    result = CliRunner().invoke(cli, [str(a) for a in args])
    assert result.exit_code == 0, result.output
    return result


def fit(*sets):
    args = ["train", "fit", "--preset", "tiny"]
    for s in sets:
        args += ["--set", s]
    result = invoke(*args)
    return Path(result.output.split("→ ")[-1].split(" (")[0].strip())


def last_checkpoint(run: Path) -> Path:
    return sorted((run / "checkpoints").glob("*.pt"))[-1]


@pytest.fixture(scope="module")
def rewarded(encoded, tmp_path_factory) -> Path:
    """`encoded` with a reward per cut (its loudness), so the score head has something to learn."""
    from scoreaware.posttrain.steps import write_encode_info_like

    out = tmp_path_factory.mktemp("rewarded") / "rewarded.jsonl.gz"
    stage = StageOutput(out, stage="encode", schema_stage="ingest", input_manifest=encoded,
                        validator=validate_manifest)
    with stage:
        for cut in read_cuts(encoded):
            stage.write(fastcopy(cut, custom={**cut.custom, "reward": float(cut.custom["loudness_lufs"])}))
    write_encode_info_like(encoded, out)
    stage.finalize(options={})
    return out


@pytest.fixture(scope="module")
def parent(rewarded, tmp_path_factory) -> Path:
    """A tiny reward-conditioned (v1) model trained long enough to make structured latents."""
    run = fit(f"manifest={rewarded}", f"run_dir={tmp_path_factory.mktemp('parent')}", "steps=150", "batch_size=4",
              "max_frames=64", "score_head=global_adaln")
    return last_checkpoint(run)


# ------------------------------------------------------------------------- cross-loading
class Blend(torch.nn.Module):
    """A child with a known gap: (1 − α)·v_parent(s) + α·v_parent(null), so bridge_gap = α exactly."""

    def __init__(self, parent, alpha: float) -> None:
        super().__init__()
        self.parent, self.alpha = parent, alpha

    def forward(self, x, t, cond):
        from scoreaware.train.model import Conditioning

        null = Conditioning(cond.text, cond.text_mask, cond.clap, torch.zeros_like(cond.score),
                            torch.zeros_like(cond.score_mask))
        return (1 - self.alpha) * self.parent(x, t, cond) + self.alpha * self.parent(x, t, null)


def test_the_bridge_gap_is_the_share_of_the_score_effect_missed(parent):
    """Closed form: a child that blends the parent with and without the score by α misses α of
    the effect; below MAX_GAP = 1/2 it is nearer the scored parent than the unscored one, above
    it nearer the unscored (the triangle inequality the default rests on)."""
    from scoreaware.cli.posttrain import cross_load_cmd
    from scoreaware.posttrain.crossload import MAX_GAP, bridge_gap, load_probes
    from scoreaware.train.model import FluxAudio, ModelConfig
    from scoreaware.train.model_paths import load_training_checkpoint

    assert {p.name: p.default for p in cross_load_cmd.params}["max_gap"] == MAX_GAP == 0.5  # one default
    state = load_training_checkpoint(parent)
    v1 = FluxAudio(ModelConfig(**state["model_config"])).eval()
    v1.load_state_dict(state["ema"])
    probes = load_probes(state)
    adapt, check = probes.halves()
    assert len(check.ids) >= 4 and not set(adapt.ids) & set(check.ids)  # the check sees no adapted cut
    assert bridge_gap(v1, v1, check, 2.0) == 0.0
    x, t, scored, null = check.draw(torch.full((len(check.ids),), 2.0), torch.Generator().manual_seed(0))
    for alpha in (0.3, 0.7):
        child = Blend(v1, alpha)
        assert bridge_gap(v1, child, check, 2.0) == pytest.approx(alpha, rel=1e-4)
        with torch.no_grad():
            v = child(x, t, scored)
            to_scored = float((v - v1(x, t, scored)).abs().mean())
            to_null = float((v - v1(x, t, null)).abs().mean())
        assert (to_scored < to_null) == (alpha < MAX_GAP), (alpha, to_scored, to_null)


def test_cross_load_is_checked_on_real_inputs_and_a_plain_load_is_refused(parent, tmp_path):
    """The check compares the cross-loaded model with its parent at the deployment score, on real
    cuts of the parent's training data the adaptation did not see (at the null score the
    embedding is zero whatever its weights, so a check there cannot fail)."""
    from scoreaware.posttrain.crossload import MAX_GAP, bridge_gap, cross_load, load_probes
    from scoreaware.train.model import FluxAudio, ModelConfig
    from scoreaware.train.model_paths import load_training_checkpoint

    state = load_training_checkpoint(parent)
    probes = load_probes(state)
    plain = cross_load(state, "input_add", 2.0, adapt_steps=0, probes=probes)
    adapted = cross_load(state, "input_add", 2.0, adapt_steps=100, probes=probes)
    print(f"bridge gap on real inputs: plain load {plain.gap:.3f}, adapted {adapted.gap:.3f}")
    assert plain.gap > 1.0 and adapted.gap < plain.gap  # plain: worse than ignoring the score
    v1 = FluxAudio(ModelConfig(**state["model_config"])).eval()
    v1.load_state_dict(state["ema"])
    v2 = FluxAudio(ModelConfig(**adapted.state["model_config"])).eval()
    v2.load_state_dict(adapted.state["ema"])
    check = probes.halves()[1]
    assert bridge_gap(v1, v2, check, 2.0) == pytest.approx(adapted.gap)  # what was written is what was checked
    unchanged = {k for k in state["ema"] if not k.startswith("score_embed.")}
    assert all(torch.equal(adapted.state["ema"][k], state["ema"][k]) for k in unchanged)  # only the head moved
    with torch.no_grad():  # a broken head (scrambled weights) fails the same check
        for parameter in v2.score_embed.parameters():
            parameter.copy_(torch.randn_like(parameter))
    assert bridge_gap(v1, v2, check, 2.0) > MAX_GAP

    refused = CliRunner().invoke(cli, ["posttrain", "cross-load", str(parent), "-o", str(tmp_path / "plain.pt"),
                                       "--adapt-steps", "0"])
    assert refused.exit_code == 1 and "not a bridge" in refused.output and not (tmp_path / "plain.pt").exists()
    out = tmp_path / "v2.pt"
    printed = invoke("train", "cross-load", parent, "-o", out, "--max-gap", "1.5", "--adapt-steps", "10").output
    assert "identical at the null score" in printed and "after 10 adaptation steps" in printed
    assert "real cuts the adaptation did not see" in printed
    lineage = torch.load(out, weights_only=True)["lineage"]
    assert lineage["bridge_gap"] <= 1.5 and lineage["bridge_gap_plain_load"] > 1.0 and lineage["deploy_score"] == 2.0
    assert lineage["probe_cuts"] == {"adapt": len(probes.ids) - len(check.ids), "check": len(check.ids)}


def test_cross_load_without_its_training_data_says_which_file_and_takes_another(parent, encoded, tmp_path):
    """A checkpoint moved away from its manifest: a one-line error naming the file and the option,
    then --probe-manifest."""
    moved = tmp_path / "elsewhere" / "parent.pt"
    moved.parent.mkdir()
    moved.write_bytes(parent.read_bytes())
    result = CliRunner().invoke(cli, ["posttrain", "cross-load", str(moved), "-o", str(tmp_path / "v2.pt")])
    assert result.exit_code == 1 and "is not there; pass --probe-manifest" in result.output, result.output
    assert "Traceback" not in result.output and not (tmp_path / "v2.pt").exists()
    invoke("posttrain", "cross-load", moved, "-o", tmp_path / "v2.pt", "--probe-manifest", _manifest_of(parent),
           "--adapt-steps", "0", "--max-gap", "1.5")
    assert (tmp_path / "v2.pt").is_file()


def _manifest_of(checkpoint: Path) -> str:
    from scoreaware.train.model_paths import load_training_checkpoint

    return load_training_checkpoint(checkpoint)["config"]["manifest"]


@pytest.fixture(scope="module")
def band_scored(encoded, tmp_path_factory) -> Path:
    """A toy whose reward is a known property: every training latent in 21 copies with its high
    band shifted by δ, and reward = δ. Nothing but the score tells the copies apart. The δ are
    normal quantiles, so the z-normalized scores reach ±2.08 as a real reward's do (a uniform
    grid would stop at ±1.6 and leave s = 2 an extrapolation)."""
    from scipy.stats import norm

    from scoreaware.posttrain.steps import write_encode_info_like

    root = tmp_path_factory.mktemp("band_scored")
    store = ArrayStore(root / "arrays")
    out = StageOutput(root / "band.jsonl.gz", stage="encode", schema_stage="ingest", input_manifest=encoded,
                      validator=validate_manifest)
    with out:
        for cut in read_cuts(encoded):
            latent = cut.load_custom("latent")
            for k, delta in enumerate(norm.ppf((np.arange(21) + 0.5) / 21)):
                shifted = latent.copy()
                shifted[:, BAND] += delta
                out.write(fastcopy(cut, id=f"{cut.id}_d{k}", custom={
                    **cut.custom, "latent": store.put("l", f"{cut.id}_d{k}", shifted), "reward": float(delta)}))
    write_encode_info_like(encoded, root / "band.jsonl.gz")
    out.finalize(options={})
    return root / "band.jsonl.gz"


def test_the_score_knob_moves_what_the_reward_measures(band_scored, tmp_path):
    """Seed B's mechanism on a toy with a known answer: fresh samples have more of the rewarded
    property (high-band energy) as the requested score rises over s ∈ {−1, 0, 1, 2}."""
    run = fit(f"manifest={band_scored}", f"run_dir={tmp_path}", "steps=300", "batch_size=8", "max_frames=64",
              "score_head=global_adaln", "lr=2e-3")
    from scoreaware.train.sample import Generator, SampleSettings

    generator = Generator(last_checkpoint(run))
    seeds = list(range(12))
    band = []
    for score in (-1.0, 0.0, 1.0, 2.0):
        latents = generator.latents(FRESH * 2, seeds, SampleSettings(steps=10, seconds=1.0, score=score, cfg=3.0))
        band.append(latents[:, :, BAND].mean(axis=(1, 2)))  # (12,) per score
    means = np.mean(band, axis=1)
    print("high-band mean by score", means.round(3))
    assert np.all(np.diff(means) > 0), means  # monotone in s
    assert np.mean(band[3] > band[0]) >= 0.9  # and clip by clip (same prompt and noise): s = 2 above s = −1


def test_strict_loading_catches_a_wrong_architecture(parent, encoded, tmp_path):
    from scoreaware.posttrain.crossload import cross_load
    from scoreaware.train.model_paths import load_training_checkpoint

    state = load_training_checkpoint(parent)
    wrong = {**state, "model_config": {**state["model_config"], "dim": 96, "heads": 4}}
    with pytest.raises(RuntimeError, match="size mismatch"):
        cross_load(wrong, "input_add")
    bigger = CliRunner().invoke(cli, ["train", "fit", "--preset", "tiny", "--set", f"manifest={encoded}", "--set",
                                      f"run_dir={tmp_path}", "--set", "steps=1", "--set", "batch_size=4",
                                      "--set", "repa_depth=3", "--set", "score_head=global_adaln",
                                      "--set", f"init_from={parent}", "--set", "model=S"])
    assert bigger.exit_code == 1 and "does not fit this model" in bigger.output
    new_head = CliRunner().invoke(cli, ["train", "fit", "--preset", "tiny", "--set", f"manifest={encoded}", "--set",
                                        f"run_dir={tmp_path}", "--set", "steps=1", "--set", "batch_size=4",
                                        "--set", f"init_from={tiny_parent_without_head(encoded, tmp_path)}",
                                        "--set", "score_head=global_adaln"])
    assert new_head.exit_code == 1 and "init_new_head=true" in new_head.output


def tiny_parent_without_head(encoded, tmp_path) -> Path:
    return last_checkpoint(fit(f"manifest={encoded}", f"run_dir={tmp_path / 'nohead'}", "steps=1", "batch_size=4",
                               "max_frames=32"))


def test_a_child_inherits_normalization_and_refuses_other_encodings(parent, encoded, clap_scored, tiny_clap,
                                                                     tmp_path):
    child = last_checkpoint(fit(f"manifest={encoded}", f"run_dir={tmp_path}", "steps=2", "batch_size=4",
                                "max_frames=64", "score_head=global_adaln", f"init_from={parent}"))
    mother, daughter = torch.load(parent, weights_only=True), torch.load(child, weights_only=True)
    assert daughter["norm"] == mother["norm"] and daughter["lineage"]["parent"]["sha256"]
    assert torch.equal(daughter["null"]["clap_text"], mother["null"]["clap_text"])
    from scoreaware.demo.tiny_models import make_tiny_t5

    other_t5 = make_tiny_t5(tmp_path / "t5_16", d_model=16)
    other = tmp_path / "other.jsonl.gz"
    invoke("train", "encode", clap_scored, "-o", other, "--text-encoder", other_t5, "--clap-model", tiny_clap)
    refused = CliRunner().invoke(cli, ["train", "fit", "--preset", "tiny", "--set", f"manifest={other}", "--set",
                                       f"run_dir={tmp_path}", "--set", "steps=1", "--set", "batch_size=4",
                                       "--set", "score_head=global_adaln", "--set", f"init_from={parent}"])
    assert refused.exit_code == 1 and "encoded differently" in refused.output and "text_encoder" in refused.output


# ---------------------------------------------------------------------------------- CRPO
def test_the_crpo_reference_never_moves_and_costs_no_gradient(parent):
    from scoreaware.train.data import PairBatches
    from scoreaware.train.flow import TimestepSampler
    from scoreaware.train.inherit import load_parent_weights, nulls_from_checkpoint
    from scoreaware.train.loop import weights_digest
    from scoreaware.train.model import FluxAudio, ModelConfig
    from scoreaware.train.objective import Trainable
    from scoreaware.train.preference import CRPOObjective, frozen_copy

    state = torch.load(parent, weights_only=True)
    backbone = FluxAudio(ModelConfig(**state["model_config"]))
    load_parent_weights(backbone, None, state, False)
    reference = frozen_copy(backbone)
    before = weights_digest(reference)
    net = Trainable(backbone)
    optimizer = torch.optim.AdamW(net.parameters(), lr=1e-3)
    objective = CRPOObjective(reference, TimestepSampler("logit_normal"), nulls_from_checkpoint(state))
    g = torch.Generator().manual_seed(0)
    n, frames, c = 2, 16, backbone.config.latent_channels
    batch = {"latent": torch.randn(n, frames, c, generator=g), "latent_l": torch.randn(n, frames, c, generator=g),
             "latent_mask": torch.ones(n, frames, dtype=torch.bool),
             "latent_l_mask": torch.ones(n, frames, dtype=torch.bool),
             "text": state["null"]["text_tokens"][None].expand(n, -1, -1).float(),
             "text_mask": torch.ones(n, state["null"]["text_tokens"].shape[0], dtype=torch.bool),
             "clap": state["null"]["clap_text"][None].expand(n, -1).float(), "score": torch.zeros(n),
             "score_mask": torch.zeros(n, dtype=torch.bool), "s_tilde": torch.ones(n)}
    for _ in range(3):
        loss, logs = objective(net, batch)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert all(p.grad is None and not p.requires_grad for p in reference.parameters())
    assert weights_digest(reference) == before and weights_digest(backbone) != before
    assert set(logs) >= {"loss", "implicit_acc", "inside", "model_w", "model_l", "ref_w", "ref_l"}
    assert PairBatches  # the pairs dataset the loop uses with this objective


def test_crpo_drops_the_score_of_a_tenth_of_the_pairs(parent):
    """Published CRPO trains with null_score_prob 0.1: about 10 % of pairs (winner and loser alike,
    and the frozen reference) see the null score, so CFG's unconditional branch stays trained."""
    from scoreaware.train.flow import TimestepSampler
    from scoreaware.train.inherit import load_parent_weights, nulls_from_checkpoint
    from scoreaware.train.model import FluxAudio, ModelConfig
    from scoreaware.train.preference import CRPOObjective, frozen_copy

    state = torch.load(parent, weights_only=True)
    backbone = FluxAudio(ModelConfig(**state["model_config"]))
    load_parent_weights(backbone, None, state, False)
    seen = []

    class Recording(torch.nn.Module):  # the reference, recording the score mask it is given
        def forward(self, x, t, cond):
            seen.append(cond.score_mask.clone())
            return torch.zeros_like(x)

    objective = CRPOObjective(Recording(), TimestepSampler("logit_normal"), nulls_from_checkpoint(state))
    net = frozen_copy(backbone)
    n, frames, c = 50, 4, backbone.config.latent_channels
    batch = {"latent": torch.zeros(n, frames, c), "latent_l": torch.zeros(n, frames, c),
             "latent_mask": torch.ones(n, frames, dtype=torch.bool),
             "latent_l_mask": torch.ones(n, frames, dtype=torch.bool),
             "text": state["null"]["text_tokens"][None].expand(n, -1, -1).float(),
             "text_mask": torch.ones(n, state["null"]["text_tokens"].shape[0], dtype=torch.bool),
             "clap": state["null"]["clap_text"][None].expand(n, -1).float(), "score": torch.full((n,), 2.0),
             "score_mask": torch.ones(n, dtype=torch.bool), "s_tilde": torch.ones(n)}
    with torch.no_grad():
        for _ in range(20):
            objective(lambda x, t, cond: (net(x, t, cond), None), batch)
    masks = torch.stack(seen)  # (20, 2n): winner half and loser half
    assert torch.equal(masks[:, :n], masks[:, n:])  # a pair is dropped as a whole
    assert 0.06 <= 1 - masks[:, :n].float().mean().item() <= 0.14


@pytest.fixture(scope="module")
def band_pairs(encoded, tmp_path_factory):
    """A toy preference: each pair is one training latent with its high band raised (winner) and
    lowered (loser), so the preferred property is known: energy in the high mel band."""
    from scoreaware.posttrain.steps import write_encode_info_like

    root = tmp_path_factory.mktemp("pairs")
    store = ArrayStore(root / "arrays")
    paths = {}
    cuts = list(read_cuts(encoded))
    for name, part in (("pairs", cuts[:-4]), ("pairs_val", cuts[-4:])):
        out = StageOutput(root / f"{name}.jsonl.gz", stage="pairs", schema_stage="ingest", input_manifest=encoded,
                          validator=validate_manifest)
        with out:
            for cut in part:
                latent = cut.load_custom("latent")
                up, down = latent.copy(), latent.copy()
                up[:, BAND] += 1.5
                down[:, BAND] -= 1.5
                out.write(fastcopy(cut, custom={**cut.custom, "latent": store.put("w", cut.id, up),
                                                "rejected_latent": store.put("l", cut.id, down)}))
        write_encode_info_like(encoded, root / f"{name}.jsonl.gz")
        out.finalize(options={})
        paths[name] = root / f"{name}.jsonl.gz"
    return paths


def high_band(checkpoint, prompts, seeds, tilt=False):
    """Mean high-band log-mel of fresh samples (latents, or the audio's spectral tilt)."""
    from scoreaware.train.sample import Generator, SampleSettings

    generator = Generator(checkpoint)
    settings = SampleSettings(steps=10, seconds=2.0, score=2.0, cfg=4.5)
    latents = generator.latents(prompts, seeds, settings)
    if not tilt:
        return latents[:, :, BAND].mean(axis=(1, 2))
    codec = MelCodec()
    values = []
    for audio in generator.audio(latents, seeds, settings):
        mel = codec.encode(audio, 44100)
        values.append(float(mel[:, BAND].mean() - mel.mean()))
    return np.array(values)


FRESH = ["A calm ambient piece", "An energetic rock song", "A jazz trio", "Solo piano", "Electronic beat",
         "Folk guitar"]


def test_crpo_on_a_toy_preference_moves_fresh_samples(parent, band_pairs, tmp_path):
    run = fit(f"manifest={band_pairs['pairs']}", f"val_manifest={band_pairs['pairs_val']}", "val_every=30",
              f"run_dir={tmp_path}", "objective=crpo", f"init_from={parent}", "steps=60", "lr=1e-4", "warmup=0",
              "batch_size=4", "max_frames=64", "score_head=global_adaln", "log_every=5", "text_dropout=0",
              "score_dropout=0")
    history = json.loads((run / "history.json").read_text())
    held = [h["val_implicit_acc"] for h in history if "val_implicit_acc" in h]
    assert held[0] < 0.5 < held[-1]  # the model starts as its reference (ties) and learns the preference
    steps = [h for h in history if "implicit_acc" in h]
    assert steps[-1]["implicit_acc"] > 0.5 and "ref_w" in steps[-1]
    child = last_checkpoint(run)
    state = torch.load(child, weights_only=True)
    assert state["lineage"]["reference_digest"] == state["lineage"]["reference_digest_at_start"]  # bit-identical
    before, after = high_band(parent, FRESH, list(range(6))), high_band(child, FRESH, list(range(6)))
    assert (after > before).all() and (after - before).mean() > 0.1  # the same prompts and seeds


# ----------------------------------------------------------------------- expert iteration
def tilt_reward_scorer(clap_model):
    """Score candidates with CLAP, then give each the known reward: its spectral tilt."""
    from scoreaware.posttrain.steps import score_candidates

    codec = MelCodec()

    def score(samples):
        clap = score_candidates(samples, clap_model, None, None)
        out = samples / "scored" / "toy.jsonl.gz"
        stage = StageOutput(out, stage="toy_reward", resume=True, input_manifest=clap, config={"reward": "tilt"},
                            validator=validate_manifest)
        if stage.check() != "skip":
            with stage:
                for cut in read_cuts(clap):
                    mel = codec.encode(np.atleast_2d(cut.load_audio()), cut.sampling_rate)
                    stage.write(fastcopy(cut, custom={**cut.custom, "reward": float(mel[:, BAND].mean() - mel.mean())}))
            stage.finalize(options={})
        return out

    return score


def test_expert_iteration_on_a_known_reward(parent, tmp_path):
    from scoreaware.posttrain.expert_iteration import RoundSettings, expert_round
    from scoreaware.posttrain.steps import Parent

    prompts = tmp_path / "prompts.txt"
    prompts.write_text("A calm ambient piece\nAn energetic rock song\nA jazz trio\nSolo piano\n")
    mother = Parent.load(parent)
    settings = RoundSettings(k=6, sample_steps=10, seconds=2.0, blend="reward=1,clap=0", top=0.25, oversample=1,
                             ft_steps=60, lr=5e-4, polish_steps=0, fit_changes={"batch_size": 4, "max_frames": 64})
    record = expert_round(mother, prompts, None, tmp_path / "round1", settings, tilt_reward_scorer(mother.clap_model))
    scored = {c.id: c.custom["reward"] for c in read_cuts(record["scored"])}
    chosen = {c.id for c in read_cuts(record["selected_manifest"])}
    top = sorted(scored, key=lambda i: (-scored[i], i))[: int(np.ceil(0.25 * len(scored)))]
    assert chosen == set(top) and record["keepers"] == 6  # exactly the top fraction by the blend
    seeds = list(range(12))
    before = high_band(parent, (FRESH[:4] * 3), seeds, tilt=True)
    after = high_band(Path(record["child"]), (FRESH[:4] * 3), seeds, tilt=True)
    assert after.mean() > before.mean() + 0.03, (before.mean(), after.mean())


@pytest.fixture(scope="module")
def reward_head(tmp_path_factory):
    from scoreaware.curate.scoring.reward import RewardConfig, RewardHead, save_reward

    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("head") / "reward.pt"
    save_reward(path, RewardHead(RewardConfig(mert_dim=1024, hidden=(16,))))
    return path


def run_module(*args, env=None):
    return subprocess.run([sys.executable, "-m", "scoreaware", *[str(a) for a in args]], capture_output=True,
                          text=True, env={**os.environ, **(env or {})}, timeout=900)


def losses(run: Path) -> list[float]:
    return [h["loss"] for h in json.loads((run / "history.json").read_text()) if "loss" in h]


def test_expert_iteration_driver_resumes_a_killed_round_exactly(parent, reward_head, tiny_mert, ingested, tiny_clap,
                                                                  tmp_path, kill_after_step):
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("A calm ambient piece\nA jazz trio\n")
    guard = tmp_path / "guard.csv"
    guard.write_text("id,prompt\ng1,Solo piano ballad\ng2,Electronic dance beat\n")
    reference = tmp_path / "ref.npz"
    invoke("eval", "reference", ingested, "-o", reference, "--model", tiny_clap, "--mert-model", tiny_mert, "-j", "0")
    args = ["train", "expert-iteration", parent, "--prompts", prompts, "--reward", reward_head, "--mert-model",
            tiny_mert, "--candidates", "2", "--top", "0.5", "--ft-steps", "8", "--polish-steps", "2", "--batch-size",
            "2", "--seconds", "1", "--steps", "3", "--data-free", "--score", "1.0", "--cfg", "3.0", "--per-prompt"]
    full = invoke(*args, "-o", tmp_path / "full", "--reference", reference, "--eval-prompts", guard)
    summary = json.loads((tmp_path / "full" / "summary.json").read_text())
    assert [g["name"] for g in summary["guard"]] == ["round0", "round1"] and summary["rounds"][0]["keepers"] == 2
    assert "fidelity guard" in full.output
    # the guard samples as the child is deployed: the score and CFG given (not the defaults 2.0, 4.5)
    for name in ("round0", "round1"):
        settings = json.loads((tmp_path / "full" / "guard" / name / "generation.json").read_text())
        assert (settings["score"], settings["cfg"]) == (1.0, 3.0)
    # --per-prompt reaches the selection through the driver: each prompt keeps its own top fraction
    from scoreaware.core.provenance import read_provenance

    selection = read_provenance(tmp_path / "full" / "round1" / "selected.jsonl.gz")["config"]
    assert (selection["group_by"], selection["per_group"]) == ("prompt_id", True)
    killed = run_module(*args, "-o", tmp_path / "part", env={"OMP_NUM_THREADS": "1", **kill_after_step(5)})
    assert killed.returncode == -9
    invoke(*args, "-o", tmp_path / "part")  # the same command again: every finished step is skipped
    a = next((tmp_path / "full" / "round1" / "finetune").iterdir())
    b = next((tmp_path / "part" / "round1" / "finetune").iterdir())
    assert len(losses(a)) == 8 and np.allclose(losses(a), losses(b), rtol=1e-5, atol=1e-6)  # resumed exactly
    polish = next((tmp_path / "full" / "round1" / "polish").iterdir())  # the published recipe ends with a polish
    assert len(losses(polish)) == 2 and "/polish/" in summary["final"]
    overlap = CliRunner().invoke(cli, [str(a) for a in args] + ["--reference", str(reference), "--eval-prompts",
                                                               str(prompts), "-o", str(tmp_path / "x")])
    assert overlap.exit_code == 1 and "--allow-overlap" in overlap.output


def test_reward_hacking_is_flagged():
    from scoreaware.posttrain.expert_iteration import hacking_flags

    guard = [{"name": "round0", "reward": 0.1, "fad_clap": 0.40, "mad": 1.7},
             {"name": "round1", "reward": 0.5, "fad_clap": 0.45, "mad": 1.6},
             {"name": "round2", "reward": 0.6, "fad_clap": 0.44, "mad": 1.5}]
    (flag,) = hacking_flags(guard)
    assert flag.startswith("round1: reward rose") and "FAD-CLAP worsened" in flag


def test_crpo_driver_builds_ranked_pairs_and_resumes_exactly(parent, tmp_path, kill_after_step):
    crossed = tmp_path / "v2.pt"
    # input-add is no bridge by the check (see above); CRPO takes it anyway, as seed B does
    invoke("train", "cross-load", parent, "-o", crossed, "--adapt-steps", "10", "--max-gap", "inf")
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("A calm ambient piece\nAn energetic rock song\nA jazz trio\nSolo piano\nFolk guitar\n")
    args = ["train", "crpo", crossed, "--prompts", prompts, "--candidates", "3", "--seconds", "2", "--steps", "4",
            "--train-steps", "8", "--warmup", "2", "--batch-size", "2", "--holdout", "0.3", "--score-dropout", "0.3"]
    one_thread = {"OMP_NUM_THREADS": "1"}  # β = 2000 magnifies float rounding: same threads in every run
    full = run_module(*args, "-o", tmp_path / "full", env=one_thread)
    assert full.returncode == 0, full.stderr[-2000:]
    pairs = list(read_cuts(tmp_path / "full" / "pairs.jsonl.gz"))
    scores = {c.id: c.custom["clap_score"] for c in read_cuts(tmp_path / "full" / "candidates" / "scored" /
                                                               "clap.jsonl.gz")}
    for cut in pairs:
        same_prompt = [v for k, v in scores.items() if k.rsplit("_s", 1)[0] == cut.custom["prompt_id"]]
        assert cut.custom["clap_score"] == max(same_prompt)  # best vs worst of the prompt's candidates
        assert cut.custom["clap_margin"] == pytest.approx(max(same_prompt) - min(same_prompt))
        assert cut.load_custom("rejected_latent").shape == cut.load_custom("latent").shape
    changed = CliRunner().invoke(cli, [str(a) for a in args] + ["-o", str(tmp_path / "full"), "--train-steps", "16",
                                                               "--lr", "1e-3", "--beta", "100"])
    assert changed.exit_code == 1 and "other options" in changed.output and "--overwrite" in changed.output
    assert "train_steps: 8 → 16" in changed.output and "beta: 2000.0 → 100.0" in changed.output
    killed = run_module(*args, "-o", tmp_path / "part", env={**one_thread, **kill_after_step(5)})
    assert killed.returncode == -9
    other = CliRunner().invoke(cli, [str(a) for a in args] + ["-o", str(tmp_path / "part"), "--lr", "1e-3"])
    assert other.exit_code == 1 and "lr: " in other.output  # a killed run resumes only with its own options
    resumed = run_module(*args, "-o", tmp_path / "part", env=one_thread)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    a, b = (next((tmp_path / name / "runs").iterdir()) for name in ("full", "part"))
    assert len(losses(a)) == 8 and np.allclose(losses(a), losses(b), rtol=1e-5, atol=1e-6)
    # the driver hands the score dropout it was given to the fine-tune (not a constant of its own)
    assert json.loads((a / "config.json").read_text())["score_dropout"] == 0.3
    summary = json.loads((tmp_path / "part" / "summary.json").read_text())
    assert summary["pairs"] + summary["held_out"] == 5 and summary["skipped"]["near_tie"] == 0


def test_claim_output_refuses_other_options_and_overwrite_starts_over(tmp_path):
    from scoreaware.core.errors import StageError
    from scoreaware.posttrain.steps import claim_output

    out = tmp_path / "run"
    claim_output(out, {"lr": 1e-4, "steps": 8})
    (out / "kept.txt").write_text("work of the first run")
    claim_output(out, {"lr": 1e-4, "steps": 8})  # the same options: continue
    assert (out / "kept.txt").is_file()
    with pytest.raises(StageError, match=r"lr: 0.0001 → 0.001.*--overwrite"):
        claim_output(out, {"lr": 1e-3, "steps": 8})
    claim_output(out, {"lr": 1e-3, "steps": 8}, overwrite=True)
    assert not (out / "kept.txt").exists() and json.loads((out / "run.json").read_text())["lr"] == 1e-3


def test_rank_pairs_skips_near_ties_and_single_candidates():
    from scoreaware.posttrain.crpo import rank_pairs

    rows = [{"id": "a_s0", "prompt_id": "a", "seed": 0, "clap_score": 0.30},
            {"id": "a_s1", "prompt_id": "a", "seed": 1, "clap_score": 0.10},
            {"id": "b_s2", "prompt_id": "b", "seed": 2, "clap_score": 0.20},
            {"id": "b_s3", "prompt_id": "b", "seed": 3, "clap_score": 0.199},
            {"id": "c_s4", "prompt_id": "c", "seed": 4, "clap_score": 0.5}]
    pairs, skipped = rank_pairs(rows, min_margin=0.01)
    assert [(best["id"], worst["id"]) for best, worst in pairs] == [("a_s0", "a_s1")]
    assert skipped == {"single_candidate": 1, "near_tie": 1}


def test_random_pairs_are_the_control_unranked_and_seeded():
    """--random-pairs (CRPO's "no preference" control): one pair per prompt with two candidates,
    drawn and ordered at random, so the "preferred" one is the better by CLAP about half the time;
    the margin rule does not apply; the same seed gives the same pairs."""
    from scoreaware.posttrain.crpo import rank_pairs

    rows = [{"id": f"p{p}_s{k}", "prompt_id": f"p{p}", "seed": k, "clap_score": 0.1 * k + 0.001 * p}
            for p in range(200) for k in range(4)] + [{"id": "lone", "prompt_id": "lone", "seed": 0, "clap_score": 0.3}]
    pairs, skipped = rank_pairs(rows, min_margin=10.0, random_seed=0)
    assert len(pairs) == 200 and skipped == {"single_candidate": 1, "near_tie": 0}
    assert all(a["prompt_id"] == b["prompt_id"] and a["id"] != b["id"] for a, b in pairs)
    better = np.mean([a["clap_score"] > b["clap_score"] for a, b in pairs])
    assert 0.4 < better < 0.6, better
    assert [(a["id"], b["id"]) for a, b in rank_pairs(rows, 0.0, random_seed=0)[0]] == \
        [(a["id"], b["id"]) for a, b in pairs]
    ranked, _ = rank_pairs(rows, 0.0)
    assert all(a["clap_score"] > b["clap_score"] for a, b in ranked)


# -------------------------------------------------------------------------- the training fixes
def test_resume_keeps_the_run_configuration(encoded, tmp_path):
    run = fit(f"manifest={encoded}", f"run_dir={tmp_path}", "steps=4", "batch_size=4", "max_frames=32",
              "ckpt_every=2", "lr=3e-3")
    result = invoke("train", "fit", "--resume", run)  # no --preset, no steps: the saved run is the config
    assert json.loads((run / "history.json").read_text())[-1]["step"] == 4 and "1000" not in result.output
    refused = CliRunner().invoke(cli, ["train", "fit", "--resume", str(run), "--set", "lr=1.0"])
    assert refused.exit_code == 2 and "cannot change ['lr']" in refused.output
    longer = invoke("train", "fit", "--resume", run, "--set", "steps=6")
    assert "resuming" in longer.output and "steps=6" in longer.output
    assert torch.load(last_checkpoint(run), weights_only=True)["config"]["lr"] == 3e-3


def test_resuming_at_the_end_of_an_epoch(encoded, tmp_path):
    n = sum(1 for _ in read_cuts(encoded))
    per_epoch = n // 4  # batches of 4, the last partial one dropped
    run = fit(f"manifest={encoded}", f"run_dir={tmp_path}", f"steps={per_epoch}", "batch_size=4", "max_frames=32")
    invoke("train", "fit", "--resume", run, "--set", f"steps={per_epoch + 2}")  # used to fail: "no full batch"
    assert json.loads((run / "history.json").read_text())[-1]["step"] == per_epoch + 2


def test_sampling_uses_the_null_training_used(parent):
    from scoreaware.train.sample import Generator

    generator = Generator(parent)
    state = torch.load(parent, weights_only=True)
    cond = generator.conditioning(["", "a calm piece"], None)
    length = state["null"]["text_tokens"].shape[0]
    assert torch.equal(cond.text[0, :length], state["null"]["text_tokens"]) and not cond.text_mask[0, length:].any()
    assert torch.equal(cond.clap[0], state["null"]["clap_text"])


def test_another_clap_is_refused_for_sampling_and_reward(parent, clap_scored, tiny_mert, tmp_path):
    from scoreaware.curate.scoring.reward import RewardConfig, RewardHead, save_reward
    from scoreaware.demo.tiny_models import make_tiny_clap
    from scoreaware.train.sample import Generator

    other = make_tiny_clap(tmp_path / "other", size="small")
    with pytest.raises(ValueError, match="not the one the training data was embedded with"):
        Generator(parent, clap_model=str(other))
    head = RewardHead(RewardConfig(mert_dim=1024, hidden=(8,)))
    head.features = {"clap_weights": "some-other-clap"}
    save_reward(tmp_path / "head.pt", head)
    result = CliRunner().invoke(cli, ["curate", "score", "reward", str(clap_scored), "--checkpoint",
                                      str(tmp_path / "head.pt"), "--mert-model", str(tiny_mert), "-j", "0", "-o",
                                      str(tmp_path / "r.jsonl.gz")])
    assert result.exit_code == 1 and "trained on CLAP features of weights some-other-clap" in result.output


def test_non_finite_scores_are_refused_naming_the_cuts(encoded, tmp_path):
    bad = tmp_path / "nan.jsonl.gz"
    with gzip.open(encoded, "rt") as f:
        lines = [json.loads(line) for line in f]
    lines[1]["custom"]["reward"] = float("nan")
    with gzip.open(bad, "wt") as f:
        f.write("".join(json.dumps(line) + "\n" for line in lines))
    (tmp_path / "nan.encode.json").write_text((encoded.parent / "encode.encode.json").read_text())
    from scoreaware.train.data import check_finite

    with pytest.raises(ValueError, match=f"reward of 1 cuts \\(first: {lines[1]['id']}\\)"):
        check_finite(bad, ("reward", "clap_score"))


def test_reward_pairs_split_by_clip():
    from scoreaware.train.reward_fit import split_pairs

    rng = np.random.default_rng(0)
    clips = [f"c{i}" for i in range(40)]
    a = [clips[i] for i in rng.integers(0, 40, 300)]
    b = [clips[i] for i in rng.integers(0, 40, 300)]
    train, held, dropped = split_pairs(a, b, 0.2, seed=0)
    seen = {a[i] for i in train} | {b[i] for i in train}
    assert held.size and not ({a[i] for i in held} | {b[i] for i in held}) & seen  # no clip on both sides
    assert len(train) + len(held) + dropped == 300
    groups = [f"g{i % 10}" for i in range(300)]
    train, held, _ = split_pairs(a, b, 0.2, seed=0, groups=groups)
    assert {groups[i] for i in train}.isdisjoint({groups[i] for i in held}) and len(held) == 60


def test_demucs_post_processing_is_seeded(tmp_path_factory):
    from demucs.hdemucs import HDemucs
    from demucs.states import save_with_checksum

    from scoreaware.train.sample import demucs_instrumental

    torch.manual_seed(0)
    model = HDemucs(sources=["drums", "bass", "other", "vocals"], channels=4)
    args, kwargs = model._init_args_kwargs
    repo = tmp_path_factory.mktemp("demucs_seeded")
    save_with_checksum({"klass": HDemucs, "args": args, "kwargs": kwargs, "state": model.state_dict(),
                        "training_args": {}}, repo / "tiny.th")
    rate = 44100
    audio = (0.3 * np.sin(2 * np.pi * 220 * np.arange(2 * rate) / rate))[None].astype(np.float32)
    one = demucs_instrumental(audio, rate, "tiny", passes=1, repo=str(repo), seed=3)
    two = demucs_instrumental(audio, rate, "tiny", passes=1, repo=str(repo), seed=3)
    assert np.array_equal(one, two)


def test_inputs_are_checked_before_the_expensive_steps(parent, tmp_path):
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("A calm ambient piece\n")
    not_a_reward = CliRunner().invoke(cli, ["posttrain", "expert-iteration", str(parent), "--prompts", str(prompts),
                                            "--reward", str(parent), "--mert-model", "m", "-o", str(tmp_path / "ei"),
                                            "--data-free"])
    assert not_a_reward.exit_code == 1 and "--reward" in not_a_reward.output and "not a reward head" in \
        not_a_reward.output
    assert not (tmp_path / "ei" / "round1").exists()  # refused before any candidate was generated


def test_broken_checkpoints_and_empty_runs_are_named(parent, tmp_path):
    import torch

    state = torch.load(parent, weights_only=True)
    del state["norm"]
    torch.save(state, tmp_path / "no_norm.pt")
    prompts = tmp_path / "p.txt"
    prompts.write_text("A calm piece\n")
    result = CliRunner().invoke(cli, ["eval", "generate", str(tmp_path / "no_norm.pt"), "--prompts", str(prompts),
                                      "-o", str(tmp_path / "out")])
    assert result.exit_code == 1 and "no_norm.pt: not a `train fit` checkpoint: it has no norm" in result.output
    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    (run / "config.json").write_text(json.dumps({"ckpt_every": 500}))
    resumed = CliRunner().invoke(cli, ["train", "fit", "--resume", str(run)])
    assert resumed.exit_code == 1 and "stopped before its first checkpoint" in resumed.output

"""Cross-loading a reward-conditioned checkpoint from one score head to another (v1 → v2).

v1 ("global_adaln") adds the score embedding to the AdaLN vector; v2 ("input_add") adds the same
embedding to the latent input tokens. The score embedder is one module with the same weights in
both, so the state dicts match key for key: cross-loading is a strict load into a model built
with the other head. The published system trained v1, cross-loaded it into v2 for CRPO ("a
bridge, not a booster": within 0.02 FAD-CLAP), and saw v2 → v1 collapse (FAD-CLAP ≈ 0.69).

A plain strict load is not a bridge: v1's score embedding, trained to shift the AdaLN vector,
lands on every latent token, a path those weights never saw. Comparing the two at the null
score cannot tell (the embedding is zero there, whatever its weights). So here:

* **probes**: real inputs of the parent's own training data (its encoded manifest, or
  ``--probe-manifest``): each cut's normalized latent noised to x_t at a random t, with its own text
  tokens and CLAP text embedding. Alternate cuts go to adaptation and to the check, so the check
  runs on cuts the adaptation never saw. (Synthetic probes, null text and N(0, 1) latents, certify
  only themselves: a head adapted on them looked 74 % off there and was 84 % off on real inputs.)
* **adaptation**: only the new head's score embedder is trained (everything else frozen) to
  reproduce the parent's velocity at scores over the deployment range (`--adapt-steps`, 0 for the
  plain load);
* **the bridge check**, at the deployment score s* (the score CRPO and sampling use): the gap
  ``mean |v_new(s*) − v_parent(s*)|`` relative to the parent's own score effect
  ``mean |v_parent(s*) − v_parent(null)|`` on the check probes. 0 is a perfect bridge; 1 means
  the new model behaves as if the score were absent. Above `max_gap` the cross-load is refused.

Why `MAX_GAP` is 0.5: below it the new model's output is, element by element on average, nearer
the parent *with* the score than the parent *without* it. By the triangle inequality
``mean |v_new − v_parent(null)| ≥ (1 − gap) · effect``, which exceeds ``gap · effect`` exactly
when gap < 1/2: a model past that point is more like the unconditioned parent than the
conditioned one, and calling it a bridge would be a guess. (The old 0.8 passed a model that keeps
a fifth of the score effect.) A plain load of a trained v1 fails it, and so does a scrambled head
(tested). Measured on the tests' toy v1 parent, checked on real cuts: the plain load misses 103 %
of the AdaLN score effect, the adapted input-add head 99.5 % after 300 steps and 94 % after 1,200
(on synthetic probes it had looked like 74 %). One vector added to the input tokens does not
reproduce a shift of every block's modulation: by this check a v1 → v2 cross-load is no bridge.
The experiment files accept it with ``max_gap = inf`` and judge what it costs downstream by TOST
against a declared margin; CRPO is what trains the new path.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from pathlib import Path

import torch
from lhotse import CutSet

from scoreaware.core.errors import StageError
from scoreaware.core.manifests import read_cuts
from scoreaware.train.data import LatentBatches, Normalization
from scoreaware.train.flow import interpolate
from scoreaware.train.model import Conditioning, FluxAudio, ModelConfig
from scoreaware.train.model_paths import load_training_checkpoint, portable_state

HEADS = ("global_adaln", "input_add", "token")


MAX_GAP = 0.5  # nearer the scored parent than the unscored one (module docstring)
PROBE_CUTS = 64  # real cuts drawn from the manifest: half adapt the head, half check it
PROBE_FRAMES = 48  # latent frames per probe (cuts are cropped to the shortest when shorter)


@dataclass
class CrossLoad:
    state: dict  # the new checkpoint
    null_gap: float  # max |v_old − v_new| at the null score (0 when the heads agree there)
    divergence: float  # mean |v_old − v_new| / mean |v_old| at the probe score
    warning: str | None
    gap_before: float = float("nan")  # bridge gap of the plain strict load
    gap: float = float("nan")  # bridge gap after adaptation (what is checked)
    adapt_losses: list[float] | None = None


@dataclass
class Probes:
    """Real conditioning and clean latents of N cuts: latent (N, T, C) normalized as in training,
    text (N, L, D_text) with text_mask (N, L), clap (N, D_clap), and the cut ids."""

    latent: torch.Tensor
    text: torch.Tensor
    text_mask: torch.Tensor
    clap: torch.Tensor
    ids: list[str]

    def rows(self, rows) -> Probes:
        ids = self.ids[rows] if isinstance(rows, slice) else [self.ids[i] for i in rows]
        return Probes(self.latent[rows], self.text[rows], self.text_mask[rows], self.clap[rows], ids)

    def halves(self) -> tuple[Probes, Probes]:
        """(adaptation probes, check probes): alternate cuts, so the check never sees an adapted cut."""
        return self.rows(slice(0, None, 2)), self.rows(slice(1, None, 2))

    def draw(self, scores: torch.Tensor, generator: torch.Generator, rows: torch.Tensor | None = None
             ) -> tuple[torch.Tensor, torch.Tensor, Conditioning, Conditioning]:
        """(x_t, t, conditioning at `scores`, the same at the null score) for `rows` (default: all),
        with fresh noise and t ~ U(0, 1)."""
        rows = torch.arange(len(self.ids)) if rows is None else rows
        x0 = self.latent[rows]
        n = len(rows)
        t = torch.rand(n, generator=generator)
        x = interpolate(x0, torch.randn(x0.shape, generator=generator), t)
        text, mask, clap = self.text[rows], self.text_mask[rows], self.clap[rows]
        scored = Conditioning(text, mask, clap, scores.float(), torch.ones(n, dtype=torch.bool))
        null = Conditioning(text, mask, clap, torch.zeros(n), torch.zeros(n, dtype=torch.bool))
        return x, t, scored, null


def load_probes(state: dict, manifest: str | Path | None = None, cuts: int = PROBE_CUTS,
                frames: int = PROBE_FRAMES, seed: int = 0) -> Probes:
    """`cuts` cuts drawn at random (seeded) from `manifest`, by default the checkpoint's own training
    manifest (`state` as `load_training_checkpoint` returns it), normalized with its statistics."""
    manifest = manifest or (state.get("config") or {}).get("manifest")
    if not manifest or not Path(manifest).is_file():
        raise StageError(f"the bridge check probes real inputs, and the checkpoint's training manifest "
                         f"{manifest or '(none recorded)'} is not there; pass --probe-manifest an encoded "
                         "manifest made with the same codec and text encoder")
    try:
        pool = [cut for cut in read_cuts(manifest) if (cut.custom or {}).get("latent") is not None]
    except Exception as exc:  # lhotse/json errors of a file that is not a manifest
        raise StageError(f"{manifest}: not a readable encoded manifest ({exc})") from None
    if len(pool) < 4:
        raise StageError(f"{manifest}: {len(pool)} encoded cuts; the bridge check needs at least 4")
    order = torch.randperm(len(pool), generator=torch.Generator().manual_seed(seed))[:cuts]
    chosen = CutSet.from_cuts([pool[i] for i in sorted(order.tolist())])
    batch = LatentBatches(Normalization.from_dict(state["norm"]), frames)[chosen]
    length = int(batch["latent_mask"].sum(1).min())  # crop to the shortest: every probe frame is real
    return Probes(batch["latent"][:, :length], batch["text"], batch["text_mask"], batch["clap"], batch["ids"])


def probe_outputs(old: FluxAudio, new: FluxAudio, probes: Probes, score: float, seed: int = 0) -> tuple[float, float]:
    """(max gap at the null score, mean |v_old − v_new| / mean |v_old| at `score`) on the probes
    (reported and recorded; the null gap is 0 by construction, so it is no check)."""
    x, t, scored, null = probes.draw(torch.full((len(probes.ids),), float(score)), torch.Generator().manual_seed(seed))
    with torch.no_grad():
        gap = float((old(x, t, null) - new(x, t, null)).abs().max())
        a, b = old(x, t, scored), new(x, t, scored)
        divergence = float((a - b).abs().mean() / a.abs().mean().clamp(min=1e-12))
    return gap, divergence


def bridge_gap(parent: FluxAudio, child: FluxAudio, probes: Probes, score: float, seed: int = 1234,
               draws: int = 4) -> float:
    """mean |v_child(s) − v_parent(s)| / mean |v_parent(s) − v_parent(null)| over `draws` noisings of
    the probes (the denominator floored at 1 % of |v_parent| so a parent that ignores the score is
    not divided by zero)."""
    g = torch.Generator().manual_seed(seed)
    miss, effect, size = 0.0, 0.0, 0.0
    with torch.no_grad():
        for _ in range(draws):
            x, t, scored, null = probes.draw(torch.full((len(probes.ids),), float(score)), g)
            v = parent(x, t, scored)
            miss += float((child(x, t, scored) - v).abs().mean())
            effect += float((v - parent(x, t, null)).abs().mean())
            size += float(v.abs().mean())
    return miss / max(effect, 0.01 * size)


def adapt_score_head(parent: FluxAudio, child: FluxAudio, probes: Probes, steps: int,
                     score_range: tuple[float, float], lr: float = 3e-3, seed: int = 0, batch: int = 8) -> list[float]:
    """Train only `child.score_embed` to give the parent's velocity on `batch` probes a step at
    scores drawn uniformly from `score_range` (every other weight frozen); the loss per step."""
    for parameter in child.parameters():
        parameter.requires_grad_(False)
    trainable = list(child.score_embed.parameters())
    for parameter in trainable:
        parameter.requires_grad_(True)
    optimizer = torch.optim.AdamW(trainable, lr=lr, weight_decay=0.0)
    g = torch.Generator().manual_seed(seed)
    low, high = score_range
    losses = []
    child.train()
    for _ in range(steps):
        rows = torch.randint(len(probes.ids), (batch,), generator=g)
        x, t, scored, _ = probes.draw(low + (high - low) * torch.rand(batch, generator=g), g, rows)
        with torch.no_grad():
            target = parent(x, t, scored)
        loss = torch.nn.functional.mse_loss(child(x, t, scored), target)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(float(loss.detach()))
    child.eval()
    for parameter in child.parameters():
        parameter.requires_grad_(True)
    return losses


def cross_load(state: dict, score_head: str, probe_score: float = 1.0, adapt_steps: int = 0,
               score_range: tuple[float, float] = (-1.0, 3.0), probes: Probes | None = None) -> CrossLoad:
    """The checkpoint `state` (as `load_training_checkpoint` returns it) with its EMA (and raw)
    weights moved to a model with `score_head`, adapted and checked on `probes` (default: drawn
    from its training manifest)."""
    before = state["model_config"]["score_head"]
    if score_head not in HEADS:
        raise ValueError(f"score head {score_head!r} not implemented; choose from {HEADS}")
    if before == "none":
        raise ValueError("the checkpoint has no score head to cross-load (score_head none)")
    if before == score_head:
        raise ValueError(f"the checkpoint already uses the {score_head} head")
    warning = None
    if before == "input_add" and score_head == "global_adaln":
        warning = ("v2 (input_add) → v1 (global_adaln): the published system saw this direction collapse "
                   "(FAD-CLAP ≈ 0.69); check the result with `scoreaware eval` before using it")
    old = FluxAudio(ModelConfig(**state["model_config"])).eval()
    old.load_state_dict(state["ema"])
    config = {**state["model_config"], "score_head": score_head}
    new = FluxAudio(ModelConfig(**config)).eval()
    new.load_state_dict(state["ema"], strict=True)  # same keys: a wrong architecture fails here
    adapt, check = (probes or load_probes(state)).halves()
    gap, divergence = probe_outputs(old, new, check, probe_score)
    gap_before = bridge_gap(old, new, check, probe_score)
    losses = adapt_score_head(old, new, adapt, adapt_steps, score_range) if adapt_steps else []
    gap_after = bridge_gap(old, new, check, probe_score) if adapt_steps else gap_before
    out = {key: copy.deepcopy(state[key]) for key in ("model", "ema", "norm", "encode", "null") if key in state}
    adapted = {f"score_embed.{k}": v.detach().clone() for k, v in new.score_embed.state_dict().items()}
    for weights in ("ema", "model"):  # the adapted head in both: sampling reads the EMA, fine-tuning starts from it
        if weights in out:
            out[weights] = {**out[weights], **{k: v for k, v in adapted.items() if k in out[weights]}}
    out.update(model_config=config, config={**state["config"], "score_head": score_head}, step=0, epoch=0,
               history=[], lineage={"cross_loaded_from_head": before, "to_head": score_head,
                                    "parent_step": state.get("step"), "null_gap": gap,
                                    f"divergence_at_score_{probe_score:g}": divergence,
                                    "bridge_gap_plain_load": gap_before, "bridge_gap": gap_after,
                                    "adapt_steps": adapt_steps, "deploy_score": probe_score,
                                    "probe_cuts": {"adapt": len(adapt.ids), "check": len(check.ids)}})
    return CrossLoad(out, gap, divergence, warning, gap_before, gap_after, losses)


def cross_load_file(checkpoint: str | Path, score_head: str, output: Path, probe_score: float = 2.0,
                    unsafe_pickle: bool = False, adapt_steps: int = 300, max_gap: float = MAX_GAP,
                    probe_manifest: str | Path | None = None) -> list[str]:
    """`cross-load` as a library call: move `checkpoint`'s weights to `score_head`, adapt the new
    head on real inputs (`probe_manifest`, default the checkpoint's training manifest), refuse
    when it is no bridge at the deployment score `probe_score` (gap above `max_gap`), write
    `output` atomically; the summary lines."""

    try:
        state = load_training_checkpoint(checkpoint, unsafe_pickle=unsafe_pickle)
        probes = load_probes(state, probe_manifest)
        result = cross_load(state, score_head, probe_score, adapt_steps, probes=probes)
    except (ValueError, RuntimeError) as exc:
        raise StageError(str(exc)) from None
    if not result.gap <= max_gap:
        raise StageError(f"not a bridge: at the deployment score {probe_score:g} the cross-loaded model misses "
                         f"{100 * result.gap:.0f} % of the parent's score effect (plain load: "
                         f"{100 * result.gap_before:.0f} %, limit {100 * max_gap:.0f} %); not written — raise "
                         "--adapt-steps, or --max-gap to accept it")
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    tmp = output.with_name(f".{output.name}.tmp")
    saved = portable_state(result.state, output.parent)  # models and files relative to the new file
    torch.save(saved, tmp)
    tmp.replace(output)
    before = state["model_config"]["score_head"]
    return [*([f"warning: {result.warning}"] if result.warning else []),
            f"{before} → {score_head}: identical at the null score (max |Δv| {result.null_gap:.1e}); at the "
            f"deployment score {probe_score:g} the plain load missed {100 * result.gap_before:.0f} % of the parent's "
            f"score effect, after {adapt_steps} adaptation steps {100 * result.gap:.0f} % (on "
            f"{len(probes.ids) // 2} real cuts the adaptation did not see; "
            + (f"limit {100 * max_gap:.0f} %)" if math.isfinite(max_gap) else "no limit)"), f"→ {output}"]

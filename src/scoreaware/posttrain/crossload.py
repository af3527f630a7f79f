"""Cross-loading a reward-conditioned checkpoint from one score head to another (v1 → v2).

v1 ("global_adaln") adds the score embedding to the AdaLN vector; v2 ("input_add") adds the same
embedding to the latent input tokens. The score embedder is one module with the same weights in
both, so the state dicts match key for key: cross-loading is a strict load into a model built
with the other head. The published system trained v1, cross-loaded it into v2 for CRPO ("a
bridge, not a booster": within 0.02 FAD-CLAP), and saw v2 → v1 collapse (FAD-CLAP ≈ 0.69).

A plain strict load is not a bridge: v1's score embedding, trained to shift the AdaLN vector,
lands on every latent token, a path those weights never saw. Comparing the two at the null
score cannot tell (the embedding is zero there, whatever its weights). So here:

* **adaptation**: only the new head's score embedder is trained (everything else frozen) to
  reproduce the parent's velocity at scores over the deployment range, on probe batches drawn
  from the checkpoint's own null conditioning and unit-normal latents (`--adapt-steps`, 0 for
  the plain load);
* **the bridge check**, at the deployment score s* (the score CRPO and sampling use): the gap
  ``mean |v_new(s*) − v_parent(s*)|`` relative to the parent's own score effect
  ``mean |v_parent(s*) − v_parent(null)|`` on held-out probe batches. 0 is a perfect bridge; 1
  means the new model behaves as if the score were absent; above `max_gap` (0.8) the cross-load
  is refused (a plain load of a trained v1 fails it, and so does a scrambled head: tested).
  Measured on a toy v1 parent, input-add recovers only about 30 % of an AdaLN score effect
  however long it adapts: a v1 → v2 cross-load is a partial bridge, and CRPO is what trains the
  new path.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from pathlib import Path

import torch

from scoreaware.core.errors import StageError
from scoreaware.train.model import Conditioning, FluxAudio, ModelConfig
from scoreaware.train.model_paths import load_training_checkpoint, portable_state

HEADS = ("global_adaln", "input_add", "token")


# A cross-load must keep at least a fifth of the parent's score effect. Measured on the tests' toy
# v1 parent: the plain load misses 107 % (worse than ignoring the score), the adapted input-add
# head 74 % after 300 steps and 70 % after 1200 (it plateaus: one vector added to the input
# tokens cannot reproduce a shift of every block's AdaLN modulation), scrambled weights far more.
MAX_GAP = 0.8


@dataclass
class CrossLoad:
    state: dict  # the new checkpoint
    null_gap: float  # max |v_old − v_new| at the null score (0 when the heads agree there)
    divergence: float  # mean |v_old − v_new| / mean |v_old| at the probe score
    warning: str | None
    gap_before: float = float("nan")  # bridge gap of the plain strict load
    gap: float = float("nan")  # bridge gap after adaptation (what is checked)
    adapt_losses: list[float] | None = None


def probe_batch(state: dict, config: ModelConfig, scores: torch.Tensor, generator: torch.Generator,
                frames: int = 48) -> tuple[torch.Tensor, torch.Tensor, Conditioning, Conditioning]:
    """(x_t, t, conditioning at `scores`, the same at the null score) for len(scores) probes."""
    n = len(scores)
    text = state["null"]["text_tokens"].float()[None].expand(n, -1, -1)
    mask = torch.ones(n, text.shape[1], dtype=torch.bool)
    clap = state["null"]["clap_text"].float()[None].expand(n, -1) + 0.1 * torch.randn(n, config.clap_dim,
                                                                                         generator=generator)
    x = torch.randn(n, frames, config.latent_channels, generator=generator)
    t = torch.rand(n, generator=generator)
    scored = Conditioning(text, mask, clap, scores.float(), torch.ones(n, dtype=torch.bool))
    null = Conditioning(text, mask, clap, torch.zeros(n), torch.zeros(n, dtype=torch.bool))
    return x, t, scored, null


def probe_outputs(old: FluxAudio, new: FluxAudio, state: dict, score: float, seed: int = 0) -> tuple[float, float]:
    """(max gap at the null score, mean |v_old − v_new| / mean |v_old| at `score`) on one probe batch
    of 4 (reported and recorded; the null gap is 0 by construction, so it is no check)."""
    x, t, scored, null = probe_batch(state, old.config, torch.full((4,), float(score)),
                                     torch.Generator().manual_seed(seed))
    with torch.no_grad():
        gap = float((old(x, t, null) - new(x, t, null)).abs().max())
        a, b = old(x, t, scored), new(x, t, scored)
        divergence = float((a - b).abs().mean() / a.abs().mean().clamp(min=1e-12))
    return gap, divergence


def bridge_gap(parent: FluxAudio, child: FluxAudio, state: dict, score: float, seed: int = 1234,
               batches: int = 4) -> float:
    """mean |v_child(s) − v_parent(s)| / mean |v_parent(s) − v_parent(null)| on held-out probes
    (the denominator floored at 1 % of |v_parent| so a parent that ignores the score is not
    divided by zero)."""
    g = torch.Generator().manual_seed(seed)
    miss, effect, size = 0.0, 0.0, 0.0
    with torch.no_grad():
        for _ in range(batches):
            x, t, scored, null = probe_batch(state, parent.config, torch.full((8,), float(score)), g)
            v = parent(x, t, scored)
            miss += float((child(x, t, scored) - v).abs().mean())
            effect += float((v - parent(x, t, null)).abs().mean())
            size += float(v.abs().mean())
    return miss / max(effect, 0.01 * size)


def adapt_score_head(parent: FluxAudio, child: FluxAudio, state: dict, steps: int, score_range: tuple[float, float],
                     lr: float = 3e-3, seed: int = 0) -> list[float]:
    """Train only `child.score_embed` to give the parent's velocity at scores drawn uniformly from
    `score_range` (every other weight frozen); the loss per step."""
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
        scores = low + (high - low) * torch.rand(8, generator=g)
        x, t, scored, _ = probe_batch(state, parent.config, scores, g)
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
               score_range: tuple[float, float] = (-1.0, 3.0)) -> CrossLoad:
    """The checkpoint `state` with its EMA (and raw) weights moved to a model with `score_head`."""
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
    gap, divergence = probe_outputs(old, new, state, probe_score)
    gap_before = bridge_gap(old, new, state, probe_score)
    losses = adapt_score_head(old, new, state, adapt_steps, score_range) if adapt_steps else []
    gap_after = bridge_gap(old, new, state, probe_score) if adapt_steps else gap_before
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
                                    "adapt_steps": adapt_steps, "deploy_score": probe_score})
    return CrossLoad(out, gap, divergence, warning, gap_before, gap_after, losses)


def cross_load_file(checkpoint: str | Path, score_head: str, output: Path, probe_score: float = 2.0,
                    unsafe_pickle: bool = False, adapt_steps: int = 300, max_gap: float = MAX_GAP) -> list[str]:
    """`cross-load` as a library call: move `checkpoint`'s weights to `score_head`, adapt the new
    head, refuse when it is no bridge at the deployment score `probe_score` (gap above
    `max_gap`), write `output` atomically; the summary lines."""

    try:
        state = load_training_checkpoint(checkpoint, unsafe_pickle=unsafe_pickle)
        result = cross_load(state, score_head, probe_score, adapt_steps)
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
            f"score effect, after {adapt_steps} adaptation steps {100 * result.gap:.0f} % ("
            + (f"limit {100 * max_gap:.0f} %)" if math.isfinite(max_gap) else "no limit)"), f"→ {output}"]

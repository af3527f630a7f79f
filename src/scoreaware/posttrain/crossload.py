"""Cross-loading a reward-conditioned checkpoint from one score head to another (v1 → v2).

v1 ("global_adaln") adds the score embedding to the AdaLN vector; v2 ("input_add") adds the same
embedding to the latent input tokens. The score embedder is one module with the same weights in
both, so the state dicts match key for key: cross-loading is a strict load into a model built
with the other head. At the null score the embedding is exactly zero, so both forwards agree
exactly there (the check below); with a score they diverge, and that divergence is reported.
The published system trained v1, cross-loaded it into v2 for CRPO (within 0.02 FAD-CLAP), and
saw v2 → v1 collapse (FAD-CLAP ≈ 0.69): that direction is allowed, with a warning.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path

import torch

from scoreaware.core.errors import StageError
from scoreaware.train.model import Conditioning, FluxAudio, ModelConfig
from scoreaware.train.model_paths import load_training_checkpoint, relative_models

HEADS = ("global_adaln", "input_add", "token")


@dataclass
class CrossLoad:
    state: dict  # the new checkpoint
    null_gap: float  # max |v_old − v_new| at the null score (0 when the heads agree there)
    divergence: float  # mean |v_old − v_new| / mean |v_old| at the probe score
    warning: str | None


def probe_outputs(old: FluxAudio, new: FluxAudio, state: dict, score: float, seed: int = 0) -> tuple[float, float]:
    """(gap at the null score, relative divergence at `score`) on a fixed random probe batch."""
    g = torch.Generator().manual_seed(seed)
    n, frames = 4, 48
    text = state["null"]["text_tokens"].float()[None].expand(n, -1, -1)
    mask = torch.ones(n, text.shape[1], dtype=torch.bool)
    clap = state["null"]["clap_text"].float()[None].expand(n, -1) + 0.1 * torch.randn(n, old.config.clap_dim,
                                                                                         generator=g)
    x = torch.randn(n, frames, old.config.latent_channels, generator=g)
    t = torch.rand(n, generator=g)
    null = Conditioning(text, mask, clap, torch.zeros(n), torch.zeros(n, dtype=torch.bool))
    scored = Conditioning(text, mask, clap, torch.full((n,), float(score)), torch.ones(n, dtype=torch.bool))
    with torch.no_grad():
        gap = float((old(x, t, null) - new(x, t, null)).abs().max())
        a, b = old(x, t, scored), new(x, t, scored)
        divergence = float((a - b).abs().mean() / a.abs().mean().clamp(min=1e-12))
    return gap, divergence


def cross_load(state: dict, score_head: str, probe_score: float = 1.0) -> CrossLoad:
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
    out = {key: copy.deepcopy(state[key]) for key in ("model", "ema", "norm", "encode", "null") if key in state}
    out.update(model_config=config, config={**state["config"], "score_head": score_head}, step=0, epoch=0,
               history=[], lineage={"cross_loaded_from_head": before, "to_head": score_head,
                                    "parent_step": state.get("step"), "null_gap": gap,
                                    f"divergence_at_score_{probe_score:g}": divergence})
    return CrossLoad(out, gap, divergence, warning)


def cross_load_file(checkpoint: str | Path, score_head: str, output: Path, probe_score: float = 1.0,
                    unsafe_pickle: bool = False) -> list[str]:
    """`cross-load` as a library call: move `checkpoint`'s weights to `score_head`, refuse when the
    two heads disagree at the null score, write `output` atomically; the summary lines."""

    try:
        state = load_training_checkpoint(checkpoint, unsafe_pickle=unsafe_pickle)
        result = cross_load(state, score_head, probe_score)
    except (ValueError, RuntimeError) as exc:
        raise StageError(str(exc)) from None
    if result.null_gap > 1e-6:
        raise StageError(f"the heads disagree at the null score (max |Δv| = {result.null_gap:.3g}); not written")
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    tmp = output.with_name(f".{output.name}.tmp")
    saved = dict(result.state)
    if isinstance(saved.get("encode"), dict):  # model folders relative to the new file
        saved["encode"] = relative_models(saved["encode"], output.parent)
    torch.save(saved, tmp)
    tmp.replace(output)
    before = state["model_config"]["score_head"]
    return [*([f"warning: {result.warning}"] if result.warning else []),
            f"{before} → {score_head}: identical at the null score (max |Δv| {result.null_gap:.1e}); with score "
            f"{probe_score:g} the outputs differ by {100 * result.divergence:.1f} % (mean |Δv| / |v|)", f"→ {output}"]

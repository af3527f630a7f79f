"""`scoreaware posttrain crpo`: CLAP-ranked preference pairs, then preference fine-tuning.

TangoFlux's CRPO as the reward-conditioned submission ran it (ttm-humanpref
`train_crpo_A_from_FT_expert.sh`): N = 5 candidates per prompt from the starting checkpoint
(the expert-iteration weights, cross-loaded to the v2 head), scored by CLAP against their prompt;
per prompt the best and the worst form a pair (near-ties under `--min-margin` are skipped and
counted); then `train fit` with ``objective=crpo`` (`train/preference.py`): β = 2000, λ_FM = 1,
lr 1e-6 constant after 100 warmup steps, score dropout 0.1 (the published ``null_score_prob``:
joint CFG's unconditional branch stays trained), the reference a frozen copy of the starting EMA. The
pairs manifest keeps both latents, so training never decodes or re-encodes.

Layout of ``-o OUT``::

    OUT/candidates/          eval generate (WAVs, latents/, samples.jsonl, scored/)
    OUT/winners.jsonl.gz     the winners, encoded like the parent
    OUT/pairs.jsonl.gz       winner cuts + rejected_latent + pair_score + clap_margin (training)
    OUT/pairs_val.jsonl.gz   held-out pairs (implicit accuracy at validation)
    OUT/runs/                the train fit run
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

import numpy as np
from lhotse.utils import fastcopy

from scoreaware.core.errors import StageError
from scoreaware.core.manifests import read_cuts
from scoreaware.core.output import StageOutput
from scoreaware.core.provenance import describe_input
from scoreaware.core.stage import StageResult, ignore
from scoreaware.posttrain.steps import (
    Parent,
    claim_output,
    encode_like_parent,
    finetune,
    generate,
    input_digests,
    score_candidates,
    write_encode_info_like,
)
from scoreaware.schemas.fields import CLAP_SCORE, PROMPT_ID
from scoreaware.schemas.validation import validate_manifest


def rank_pairs(rows: list[dict], min_margin: float, random_seed: int | None = None,
               ) -> tuple[list[tuple[dict, dict]], dict]:
    """Best vs worst CLAP candidate per prompt; (pairs, counts of what was skipped and why).

    With `random_seed` (the control arm): two candidates per prompt drawn at random and ordered at
    random, so "preferred" carries no information; the margin rule does not apply.
    """
    by_prompt: dict[str, list[dict]] = defaultdict(list)
    for row in rows:
        if row.get(CLAP_SCORE) is not None:
            by_prompt[row[PROMPT_ID]].append(row)
    pairs, skipped = [], {"single_candidate": 0, "near_tie": 0}
    rng = np.random.default_rng(random_seed)
    for prompt_id in sorted(by_prompt):
        candidates = sorted(by_prompt[prompt_id], key=lambda r: (-r[CLAP_SCORE], r["seed"]))
        if len(candidates) < 2:
            skipped["single_candidate"] += 1
            continue
        if random_seed is not None:
            first, second = rng.choice(len(candidates), size=2, replace=False)
            pairs.append((candidates[first], candidates[second]))
            continue
        best, worst = candidates[0], candidates[-1]
        if best[CLAP_SCORE] - worst[CLAP_SCORE] < min_margin:
            skipped["near_tie"] += 1
            continue
        pairs.append((best, worst))
    return pairs, skipped


# the driver's defaults, as `posttrain crpo` has them (callers name only what they change)
CRPO_DEFAULTS = dict(n=5, score=2.0, cfg=4.5, sample_steps=25, seconds=10.0, clap_backend="transformers",
                     clap_model=None, min_margin=0.0, holdout=0.1, train_steps=5000, lr=1e-6, warmup=100, beta=2000.0,
                     lambda_fm=1.0, batch_size=8, unsafe_pickle=False, score_dropout=0.1, random_pairs=False)


def run_crpo(checkpoint: Path, prompts: Path, output: Path, n: int, score: float, cfg: float,
         sample_steps: int, seconds: float, clap_backend: str, clap_model: str | None, min_margin: float,
         holdout: float, train_steps: int, lr: float, warmup: int, beta: float, lambda_fm: float, batch_size: int,
         unsafe_pickle: bool, overwrite: bool = False, score_dropout: float = 0.1,
         log: Callable[[str], None] = ignore, random_pairs: bool = False) -> StageResult:
    """CRPO from CHECKPOINT: CLAP-ranked pairs of its own candidates, then preference fine-tuning.

    The options are recorded in OUT/run.json; a rerun with other options is refused (``overwrite``
    starts over), the same options continue an interrupted run. Notes on the way go to `log`; the
    summary comes back as a `StageResult` (the command prints it).
    """
    claim_output(output, {**input_digests(checkpoint=checkpoint, prompts=prompts), "candidates": n, "score": score,
                          "cfg": cfg, "sample_steps": sample_steps, "seconds": seconds, "clap_backend": clap_backend,
                          "clap_model": clap_model, "min_margin": min_margin, "holdout": holdout,
                          "train_steps": train_steps, "lr": lr, "warmup": warmup, "beta": beta, "lambda_fm": lambda_fm,
                          "batch_size": batch_size, "score_dropout": score_dropout,
                          **({"random_pairs": True} if random_pairs else {})}, overwrite)
    parent = Parent.load(checkpoint, unsafe_pickle)
    if parent.state["model_config"]["score_head"] != "input_add":
        log(f"note: {checkpoint.name} uses the {parent.state['model_config']['score_head']} head; the "
            "published CRPO ran on v2 (input_add): `scoreaware train cross-load` moves it")
    candidates = output / "candidates"
    generate(parent.path, prompts, candidates, n, score, cfg, sample_steps, seconds, keep_latents=True)
    scored = score_candidates(candidates, clap_model or parent.clap_model, None, None, backend=clap_backend)
    rows = [{"id": c.id, PROMPT_ID: c.custom[PROMPT_ID], "seed": c.custom["seed"],
             CLAP_SCORE: c.custom.get(CLAP_SCORE), "cut": c} for c in read_cuts(scored)]
    pairs, skipped = rank_pairs(rows, min_margin, random_seed=0 if random_pairs else None)
    if not pairs:
        raise StageError(f"no pair: {skipped['near_tie']} near-ties under --min-margin {min_margin}, "
                                   f"{skipped['single_candidate']} prompts with one scored candidate")
    winners_manifest = output / "winners_raw.jsonl.gz"
    raw = StageOutput(winners_manifest, stage="winners", resume=True, input_manifest=scored,
                      config={"scored_sha256": describe_input(scored)["sha256"], "min_margin": min_margin},
                      validator=validate_manifest)
    if raw.check() != "skip":
        with raw:
            for best, _ in pairs:
                raw.write(best["cut"])
        raw.finalize(options={}, inputs=[describe_input(scored)])
    winners = encode_like_parent(parent, winners_manifest, output / "winners.jsonl.gz")
    encoded = {c.id: c for c in read_cuts(winners)}
    losers = {best["id"]: worst for best, worst in pairs}
    rng = np.random.default_rng(0)
    held = {best["id"] for best, _ in pairs if rng.random() < holdout} if len(pairs) >= 4 else set()
    if holdout and len(pairs) < 4:
        log(f"note: {len(pairs)} pairs: too few to hold any out (--holdout needs 4 or more); all train")
    if len(held) == len(pairs):
        raise StageError(f"--holdout {holdout:g} held out all {len(pairs)} pairs: nothing is left to train on; lower "
                         "--holdout or add prompts (the candidates are kept: the next run reuses them)")
    outputs = {}
    for name, keep in (("pairs", lambda i: i not in held), ("pairs_val", lambda i: i in held)):
        out = StageOutput(output / f"{name}.jsonl.gz", stage="pairs", overwrite=True, schema_stage="ingest",
                          input_manifest=winners, validator=validate_manifest)
        with out:
            for winner_id, worst in losers.items():
                if winner_id not in encoded or not keep(winner_id):
                    continue
                loser_latent = worst["cut"].custom["latent"]
                margin = float(encoded[winner_id].custom[CLAP_SCORE] - worst[CLAP_SCORE])
                custom = {**encoded[winner_id].custom, "rejected_latent": loser_latent,
                          "rejected_id": worst["id"], "clap_margin": margin, "pair_score": score}
                out.write(fastcopy(encoded[winner_id], custom=custom))
        write_encode_info_like(winners, output / f"{name}.jsonl.gz")
        outputs[name] = out.finalize(options={"min_margin": min_margin, "score": score},
                                     inputs=[describe_input(winners)])["outputs"]["cuts"]["items"]
    val = output / "pairs_val.jsonl.gz"
    if outputs["pairs"] < batch_size:
        log(f"note: {outputs['pairs']} training pairs, fewer than --batch-size {batch_size}: batches of "
            f"{outputs['pairs']}")
        batch_size = outputs["pairs"]
    child = finetune(parent, output / "pairs.jsonl.gz", output / "runs", train_steps, lr, warmup,
                     objective="crpo", crpo_beta=beta, crpo_lambda_fm=lambda_fm, repa="", batch_size=batch_size,
                     timesteps="logit_normal", score_dropout=score_dropout, text_dropout=0.0,
                     **({"val_manifest": str(val), "val_every": max(1, train_steps // 4)} if outputs["pairs_val"]
                        else {}))
    history = json.loads((child.parent.parent / "history.json").read_text())
    accuracy = [h["implicit_acc"] for h in history if "implicit_acc" in h]
    held_out = [h["val_implicit_acc"] for h in history if "val_implicit_acc" in h]
    margins = [float(best[CLAP_SCORE] - worst[CLAP_SCORE]) for best, worst in pairs]
    summary = {"pairs": outputs["pairs"], "held_out": outputs["pairs_val"], "skipped": skipped,
               "random_pairs": random_pairs, "mean_clap_margin": float(np.mean(margins)),
               "implicit_acc": accuracy[-1] if accuracy else None,
               "held_out_implicit_acc": held_out[-1] if held_out else None, "checkpoint": str(child)}
    (output / "summary.json").write_text(json.dumps(summary, indent=1))
    kind = "random (the control) " if random_pairs else ""
    lines = [f"{kind}{len(pairs)} pairs from {len(rows)} candidates ({outputs['pairs']} train, {outputs['pairs_val']} "
             f"held out); skipped {skipped['near_tie']} near-ties (< {min_margin:g}) and "
             f"{skipped['single_candidate']} prompts with one candidate; mean CLAP margin {np.mean(margins):.4f}"]
    if accuracy:
        lines.append(f"implicit accuracy {accuracy[0]:.3f} → {accuracy[-1]:.3f}"
                     + (f"; held-out {held_out[0]:.3f} → {held_out[-1]:.3f}" if held_out else ""))
    lines += [f"→ {child}", f"→ {output / 'summary.json'}"]
    return StageResult("crpo", Path(child), lines=lines, title="posttrain crpo")

"""`scoreaware posttrain expert-iteration`: rounds of generate → score → select → mix → fine-tune.

The reward-conditioned submission's stage 2 (ttm-humanpref `finetune_v1_44k_expert_iter.sh`,
TuneJury mode 3): K candidates per prompt at score s = 2 and CFG 4.5, scored by the TuneJury
reward and CLAP; the top decile by an explicit z-blend (`--blend reward=1,clap=1`; reward-only
`--blend reward=1,clap=0` is TuneJury's protocol); the keepers, with the latents they were
generated as, oversampled K× into the base training mixture (written out: the published
oversampling was an undocumented duplication of rows); a fine-tune from the parent's EMA at a
constant 1e-5 without warmup, and an optional polish at 1e-6. Each step is an existing command
and each resumes. A fidelity guard generates the evaluation prompts before and after each
round and scores them against a reference: rising reward with worsening FAD-CLAP or MAD (reward
hacking, as in TuneJury's sweep) is flagged.

Layout of ``-o OUT``::

    OUT/round1/candidates/      eval generate (WAVs, latents/, samples.jsonl, scored/)
    OUT/round1/selected.jsonl.gz, keepers.jsonl.gz (encoded), mixture.jsonl.gz
    OUT/round1/finetune/, polish/   train fit runs
    OUT/guard/round0, round1 …  eval generate + eval score of the evaluation prompts
    OUT/summary.json
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from scoreaware.core.errors import StageError
from scoreaware.core.manifests import read_cuts
from scoreaware.core.output import StageOutput
from scoreaware.core.provenance import describe_input, read_provenance
from scoreaware.core.stage import StageResult, ignore
from scoreaware.curate.scoring.reward import load_reward
from scoreaware.curate.stages.select import SelectConfig, oversampled, parse_weights, run_select
from scoreaware.evaluate.score_run import score_run
from scoreaware.posttrain.steps import (
    Parent,
    claim_output,
    encode_like_parent,
    finetune,
    generate,
    input_digests,
    overlapping_prompts,
    score_candidates,
    write_encode_info_like,
)
from scoreaware.schemas.fields import CLAP_SCORE, PROMPT_ID, REWARD
from scoreaware.schemas.validation import validate_manifest

# the driver's defaults, as `posttrain expert-iteration` has them (callers name only what they change)
EI_DEFAULTS = dict(base=None, data_free=False, rounds=1, k=9, score=2.0, cfg=4.5, sample_steps=25, seconds=10.0,
                   blend="reward=1,clap=1", per_prompt=False, top=0.1, oversample=5, ft_steps=30_000, lr=1e-5,
                   polish_steps=5000, polish_lr=1e-6, batch_size=None, reference=None, eval_prompts=None,
                   allow_overlap=False, unsafe_pickle=False, random_selection=False)


def run_expert_iteration(checkpoint: Path, prompts: Path, output: Path, base: Path | None,
                     data_free: bool,
                     reward: str, mert_model: str, rounds: int, k: int, score: float, cfg: float, sample_steps: int,
                     seconds: float, blend: str, per_prompt: bool, top: float, oversample: int, ft_steps: int,
                     lr: float, polish_steps: int, polish_lr: float, batch_size: int | None, reference: Path | None,
                     eval_prompts: Path | None, allow_overlap: bool, unsafe_pickle: bool,
                     overwrite: bool = False, log: Callable[[str], None] = ignore,
                     random_selection: bool = False) -> StageResult:
    """Expert iteration from CHECKPOINT: generate, score, select, mix, fine-tune (ROUNDS times).

    The options are recorded in OUT/run.json; a rerun with other options is refused (``overwrite``
    starts over), the same options continue an interrupted run. Each round is announced to `log`;
    the summary comes back as a `StageResult` (the command prints it).
    """
    if eval_prompts is not None and not allow_overlap:
        shared = overlapping_prompts(eval_prompts, prompts)
        if shared:
            raise StageError(f"{len(shared)} evaluation prompts are also candidate prompts (first: "
                                       f"{shared[0]!r}): the guard would measure what the rounds trained on; pass "
                                       "--allow-overlap to accept that")
    claim_output(output, {**input_digests(checkpoint=checkpoint, prompts=prompts, base=base, reward=reward,
                                          reference=reference, eval_prompts=eval_prompts),
                          "data_free": data_free, "mert_model": mert_model, "rounds": rounds, "candidates": k,
                          "score": score, "cfg": cfg, "sample_steps": sample_steps, "seconds": seconds, "blend": blend,
                          "per_prompt": per_prompt, "top": top, "oversample": oversample, "ft_steps": ft_steps,
                          "lr": lr, "polish_steps": polish_steps, "polish_lr": polish_lr, "batch_size": batch_size,
                          **({"random_selection": True} if random_selection else {})},
                 overwrite)
    parent = Parent.load(checkpoint, unsafe_pickle)
    try:  # every input is checked before the first expensive step (the candidates)
        load_reward(reward, unsafe_pickle=unsafe_pickle)
    except (ValueError, RuntimeError, KeyError, TypeError) as exc:
        raise StageError(f"--reward {reward}: not a reward head ({' '.join(str(exc).split())[:200]}); pass a "
                         "`scoreaware train reward` checkpoint or a released TuneJury head") from None
    base = None if data_free else (base or Path(parent.config["manifest"]))
    if base is not None and not base.is_file():
        raise StageError(f"base training manifest {base} not found; pass --manifest (or --data-free)")
    guard = []
    if reference is not None and eval_prompts is not None:
        guard.append(fidelity(parent.path, eval_prompts, reference, output / "guard" / "round0", reward,
                              mert_model, sample_steps, seconds, score, cfg))
    history = []
    changes = {"batch_size": batch_size} if batch_size else {}
    settings = RoundSettings(k, score, cfg, sample_steps, seconds, blend, per_prompt, top, oversample, ft_steps, lr,
                             polish_steps, polish_lr, changes, random_selection)
    for number in range(1, rounds + 1):
        log(f"\n══ expert iteration, round {number} of {rounds} (parent {parent.path.name}) ══")
        clap_model = parent.clap_model  # every round scores with the CLAP the parents were trained with
        record = expert_round(parent, prompts, base, output / f"round{number}", settings,
                              lambda samples, clap=clap_model: score_candidates(samples, clap, reward,
                                                                                     mert_model))
        record["round"] = number
        if reference is not None and eval_prompts is not None:
            guard.append(fidelity(Path(record["child"]), eval_prompts, reference,
                                  output / "guard" / f"round{number}", reward, mert_model, sample_steps, seconds,
                                  score, cfg))
        history.append(record)
        parent = Parent.load(record["child"])
    flags = hacking_flags(guard)
    summary = {"rounds": history, "guard": guard, "flags": flags, "final": str(parent.path)}
    (output / "summary.json").write_text(json.dumps(summary, indent=1, default=str))
    kind = "random " if random_selection else ""
    lines = [f"round {record['round']}: {record['keepers']} {kind}keepers of {record['selected']['of']} candidates "
             f"(top {top:g}, blend {blend}{', per prompt' if per_prompt else ''}) × {oversample} → "
             f"{Path(record['child']).parent.parent.name}/{Path(record['child']).name}" for record in history]
    if guard:
        lines.append("fidelity guard (evaluation prompts):  round  FAD-CLAP  MAD  reward")
        lines += [f"  {row['name']:>8}  {row['fad_clap']:.4f}  {_fmt(row.get('mad'))}  {_fmt(row.get('reward'))}"
                  for row in guard]
    else:
        lines.append("fidelity guard skipped: pass --reference and --eval-prompts")
    lines += [f"⚠ {flag}" for flag in flags] + [f"→ {parent.path}", f"→ {output / 'summary.json'}"]
    return StageResult("expert-iteration", Path(parent.path), lines=lines, title="posttrain expert-iteration")


@dataclass(frozen=True)
class RoundSettings:
    k: int = 9
    score: float = 2.0
    cfg: float = 4.5
    sample_steps: int = 25
    seconds: float = 10.0
    blend: str = "reward=1,clap=1"
    per_prompt: bool = False
    top: float = 0.1
    oversample: int = 5
    ft_steps: int = 30_000
    lr: float = 1e-5
    polish_steps: int = 5000  # the published recipe: 30k steps at 1e-5, then 5k at 1e-6
    polish_lr: float = 1e-6
    fit_changes: dict = field(default_factory=dict)
    random_selection: bool = False  # the control: as many keepers, drawn at random (seed 0), not the best


def expert_round(parent: Parent, prompts: Path, base: Path | None, folder: Path,
                 settings: RoundSettings, score_fn) -> dict:
    """One round: candidates → `score_fn(candidates_dir)` (a scored manifest with `reward` and
    `clap_score`) → select → encode the keepers → mixture → fine-tune (→ polish). Each step skips
    what a previous run finished."""

    candidates = folder / "candidates"
    generate(parent.path, prompts, candidates, settings.k, settings.score, settings.cfg, settings.sample_steps,
             settings.seconds, keep_latents=True)
    scored = score_fn(candidates)
    selected = folder / "selected.jsonl.gz"
    run_select(scored, selected, SelectConfig(top=settings.top, weights=parse_weights(settings.blend),
                                              group_by=PROMPT_ID if settings.per_prompt else None,
                                              per_group=settings.per_prompt,
                                              random_seed=0 if settings.random_selection else None))
    keepers = encode_like_parent(parent, selected, folder / "keepers.jsonl.gz")
    mixture = folder / "mixture.jsonl.gz"
    mix = StageOutput(mixture, stage="mixture", resume=True, schema_stage="mixture",
                      config={"base_sha256": describe_input(base)["sha256"] if base else None,
                              "keepers_sha256": describe_input(keepers)["sha256"], "oversample": settings.oversample},
                      input_manifest=keepers, validator=validate_manifest)
    if mix.check() != "skip":
        with mix:
            for cut in oversampled(read_cuts(base) if base else [], read_cuts(keepers), settings.oversample):
                mix.write(cut)
        write_encode_info_like(keepers, mixture)
        mix.finalize(options={"base": str(base) if base else "none (data-free)", "keepers": str(keepers)},
                     inputs=[describe_input(keepers), *([describe_input(base)] if base else [])])
    keeper_count = sum(1 for _ in read_cuts(keepers))
    child = finetune(parent, mixture, folder / "finetune", settings.ft_steps, settings.lr,
                     **settings.fit_changes)
    if settings.polish_steps:
        child = finetune(Parent.load(child), mixture, folder / "polish", settings.polish_steps,
                         settings.polish_lr, **settings.fit_changes)
    return {"parent": str(parent.path), "child": str(child), "candidates": settings.k, "keepers": keeper_count,
            "mixture": str(mixture), "scored": str(scored), "selected_manifest": str(selected),
            "blend": settings.blend, "per_prompt": settings.per_prompt, "top": settings.top,
            "oversample": settings.oversample, "random_selection": settings.random_selection,
            "selected": _selection(selected)}


def _fmt(value) -> str:
    return "—" if value is None else f"{value:.4f}"


def _selection(selected: Path) -> dict:
    options = (read_provenance(selected) or {}).get("options", {})
    return {"selected": options.get("selected"), "of": options.get("of"),
            "cutoff": options.get("combined_score_cutoff")}


def fidelity(checkpoint: Path, prompts: Path, reference: Path, out: Path, reward: str,
             mert_model: str, steps: int, seconds: float, score: float | None, cfg: float) -> dict:
    """Generate the evaluation prompts with `checkpoint` at the deployment score and CFG (those the
    candidates are generated at: what a user of the child gets) and score them: FAD-CLAP, MAD,
    reward."""
    generate(checkpoint, prompts, out, 1, score, cfg, steps, seconds, keep_latents=False)
    score_run(out, reference, reward_checkpoint=reward, mert_model=mert_model, workers=0, bootstrap=50)
    metrics = json.loads((out / "eval" / "scores.json").read_text())["metrics"]
    return {"name": out.name, "checkpoint": str(checkpoint), "fad_clap": metrics["fad_clap"]["fad"],
            "mad": (metrics.get("mad") or {}).get("value"), "reward": (metrics.get(REWARD) or {}).get("mean"),
            CLAP_SCORE: metrics[CLAP_SCORE]["mean"]}


def hacking_flags(guard: list[dict]) -> list[str]:
    """Rounds whose reward rose while fidelity (FAD-CLAP, MAD) got worse: reward hacking?"""
    flags = []
    for before, after in zip(guard, guard[1:]):
        if before.get(REWARD) is None or after.get(REWARD) is None or after["reward"] <= before["reward"]:
            continue
        worse = [name for name in ("fad_clap", "mad") if before.get(name) is not None and after.get(name) is not None
                 and after[name] > before[name]]
        if worse:
            flags.append(f"{after['name']}: reward rose {before['reward']:.3f} → {after['reward']:.3f} while "
                         + " and ".join(f"{n.replace('_', '-').upper()} worsened {before[n]:.3f} → {after[n]:.3f}"
                                        for n in worse) + " — possible reward hacking (TuneJury's sweep saw this)")
    return flags

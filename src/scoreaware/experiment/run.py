"""`scoreaware experiment run EXP.toml`: every arm × training seed trained, generated, scored, tabled.

Layout of ``-o OUT``::

    OUT/run.json                          the experiment file's digest (another file is refused)
    OUT/manifests/<arm>.jsonl.gz          an arm's curation variant (only arms with `filter`)
    OUT/runs/<arm>/seed<k>/               train fit, or the post-training step of an `after` arm
    OUT/samples/<arm>/seed<k>/            eval generate + eval score (eval/scores.json, clips.csv)
    OUT/status.json                       per arm × seed: done, or the error that stopped it
    OUT/held_out.png                      validation flow loss per t bin of each arm (with [evaluate] held_out)
    OUT/table.md, table.csv, table.png    every arm against the first (a post-training arm: against
                                          its parent), prompt as the unit
    OUT/seed_deltas.csv, contrasts.md     every metric's delta per training seed; the declared contrasts
    OUT/arm_means.csv                     every metric's prompt-level mean per arm × training seed
    OUT/summary.json

Each step is an existing library call that resumes (`fit_or_resume`, `run_generation(resume=True)`,
`score_run` skips an up-to-date score), so running the same command again after a kill
continues where it stopped: no arm × seed is trained twice. An arm × seed that fails is recorded
with its error and the others go on; the table holds what finished, and the command then fails
naming what did not.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from pathlib import Path

from scoreaware.core.errors import StageError
from scoreaware.core.files import atomic_write_text
from scoreaware.core.provenance import describe_input
from scoreaware.curate.stages.filter import FilterConfig, run_filter
from scoreaware.evaluate.adherence import judge_run
from scoreaware.evaluate.compare import plot, to_markdown, write_csv
from scoreaware.evaluate.embeddings import load_reference
from scoreaware.evaluate.judge import Judge
from scoreaware.evaluate.labels import label_hits
from scoreaware.evaluate.score_run import reference_clap, score_run
from scoreaware.experiment.contrasts import (
    arm_means,
    contrast_table,
    format_arm_means,
    format_contrasts,
    load_cells,
    seed_deltas,
    write_rows,
    write_seed_deltas,
)
from scoreaware.experiment.plan import estimate_seconds
from scoreaware.experiment.spec import Arm, Experiment, load_experiment
from scoreaware.experiment.table import experiment_table, held_out_lines
from scoreaware.posttrain.crossload import MAX_GAP, cross_load_file
from scoreaware.posttrain.crpo import CRPO_DEFAULTS, run_crpo
from scoreaware.posttrain.expert_iteration import EI_DEFAULTS, run_expert_iteration
from scoreaware.posttrain.steps import claim_output, write_encode_info_like
from scoreaware.train.config import ConfigError
from scoreaware.train.data import encode_info
from scoreaware.train.fit import fit_or_resume
from scoreaware.train.held_out import held_out_flow
from scoreaware.train.model_paths import require_models
from scoreaware.train.prompts import read_prompts
from scoreaware.train.sample import SampleSettings, run_generation

FAILURES = (StageError, ConfigError, ValueError, RuntimeError, OSError, KeyError)


def arm_manifest(experiment: Experiment, arm: Arm, output: Path) -> Path:
    """The training manifest of an arm: the experiment's or the arm's own, filtered when it says so."""
    source = arm.manifest or experiment.manifest
    if not arm.filter:
        return source
    target = output / "manifests" / f"{arm.name}.jsonl.gz"
    rules = {"clap_percentile": None, "require_caption": False, **arm.filter}  # only the named rules apply
    run_filter(source, target, FilterConfig(**rules), resume=True)
    # the encode info beside the variant, not found through provenance (whose paths are the cwd's)
    write_encode_info_like(source, target)
    return target


def train_cell(experiment: Experiment, arm: Arm, seed: int, output: Path, log: Callable[[str], None]) -> Path:
    """`train fit` of one training arm × seed (resumed when interrupted); its checkpoint."""
    run_dir = output / "runs" / arm.name / f"seed{seed}"
    manifest = arm_manifest(experiment, arm, output)
    return fit_or_resume(run_dir, experiment.overrides(arm, seed, manifest, run_dir), preset=experiment.preset,
                         log=log)


def posttrain_cell(experiment: Experiment, arm: Arm, parent: Path, seed: int, output: Path) -> Path:
    """One post-training step of `arm` from `parent` (its `after` arm's checkpoint for this training
    seed), through the drivers the commands call (each resumes and refuses changed options); its
    checkpoint."""
    ev, options = experiment.evaluation, dict(arm.options)
    folder = output / "runs" / arm.name / f"seed{seed}"
    if arm.posttrain == "expert-iteration":
        reward = options.pop("reward", str(ev.reward) if ev.reward else None)
        mert = options.pop("mert_model", ev.mert_model)
        if not reward or not mert:
            raise StageError(f"{arm.name}: expert iteration needs a reward and its MERT ([evaluate] reward and "
                             "mert_model, or the arm's options)")
        run_expert_iteration(**{**EI_DEFAULTS, "score": ev.score, "cfg": ev.cfg, **options, "checkpoint": parent,
                                "prompts": arm.prompts, "output": folder, "reward": reward, "mert_model": mert})
        return Path(json.loads((folder / "summary.json").read_text())["final"])
    if arm.posttrain == "crpo":
        run_crpo(**{**CRPO_DEFAULTS, "score": ev.score, "cfg": ev.cfg, **options, "checkpoint": parent,
                    "prompts": arm.prompts, "output": folder})
        return Path(json.loads((folder / "summary.json").read_text())["checkpoint"])
    # the same claim as the other drivers: OUT/run.json, other options refused; the file is written atomically
    claim_output(folder, {"parent_sha256": describe_input(parent)["sha256"], **options})
    target = folder / "crossload.pt"
    if not target.is_file():
        lines = cross_load_file(parent, options.get("score_head", "input_add"), target,
                                probe_score=options.get("probe_score", ev.score if ev.score is not None else 2.0),
                                adapt_steps=options.get("adapt_steps", 300), max_gap=options.get("max_gap", MAX_GAP))
        atomic_write_text(folder / "crossload.json", json.dumps({"summary": lines}, indent=1) + "\n")
    return target


def run_cell(experiment: Experiment, arm: Arm, seed: int, checkpoint: Path, output: Path) -> Path:
    """Generate and score one arm × training seed's checkpoint; its scored samples folder."""
    ev = experiment.evaluation
    samples = output / "samples" / arm.name / f"seed{seed}"
    run_generation(checkpoint, read_prompts(ev.prompts), samples,
                   SampleSettings(steps=ev.steps, cfg=ev.cfg, score=ev.score, seconds=ev.seconds, seed=0),
                   seeds_per_prompt=ev.seeds, resume=True, prompts_file=str(ev.prompts))
    score_run(samples, ev.reference, reward_checkpoint=str(ev.reward) if ev.reward else None,
              mert_model=ev.mert_model, workers=0, bootstrap=100)
    if ev.judge:
        judge_run(samples, ev.judge)
    if ev.labels:
        hits = label_hits(samples, ev.label_clap, list(ev.labels), ev.label_template)
        atomic_write_text(samples / "eval" / "labels.json", json.dumps(hits, indent=1) + "\n")
    if ev.held_out:
        record = samples / "eval" / "held_out_flow.json"
        digest = describe_input(checkpoint)["sha256"]
        if not (record.is_file() and json.loads(record.read_text()).get("checkpoint_sha256") == digest):
            flow = held_out_flow(checkpoint, ev.held_out)
            atomic_write_text(record, json.dumps({"checkpoint_sha256": digest, **flow}, indent=1) + "\n")
    return samples


def preflight(experiment: Experiment) -> None:
    """Everything the run will need later, resolved now (a StageError before the first arm trains):
    the models each training manifest's encode info records, the reference's CLAP, the judge and
    the prompts (the file's own paths were checked when it was read)."""
    ev = experiment.evaluation
    try:
        for manifest in {experiment.manifest, *(arm.manifest for arm in experiment.arms if arm.manifest)}:
            require_models(encode_info(manifest), f"the encode info of {manifest}")
        sets, _ = load_reference(ev.reference)
        if "clap" not in sets:
            raise StageError(f"{ev.reference}: has no CLAP embeddings")
        reference_clap(ev.reference, sets["clap"].fingerprint)
        read_prompts(ev.prompts)
        if ev.judge:
            Judge(ev.judge)
    except (FileNotFoundError, ValueError) as exc:
        raise StageError(f"{experiment.path}: {exc}") from None


def run_experiment(path: Path, output: Path, overwrite: bool = False, resamples: int = 2000,
                   log: Callable[[str], None] = print, seeds: tuple[int, ...] | None = None,
                   yes: bool = False) -> tuple[dict, list[str]]:
    """Run every arm × training seed of the experiment file `path` into `output` (only the training
    seeds `seeds` now, when given: cells finished earlier stay in the table; none, `()`, writes only
    the tables of what is finished); (payload, lines)."""
    experiment = load_experiment(path)
    if seeds is not None:
        unknown = sorted(set(seeds) - set(experiment.training_seeds))
        if unknown:
            raise StageError(f"--seeds {unknown[0]} is not a training seed of {path} "
                             f"({', '.join(map(str, experiment.training_seeds))})")
    preflight(experiment)
    hours = estimate_seconds(experiment, seeds=seeds) / 3600
    if hours > 24 and not yes:
        raise StageError(f"{path}: this run would take about {hours:,.0f} hours here (`experiment plan` shows why); "
                         "pass --yes to start it anyway, or run part of it with --seeds")
    claim_output(output, {"experiment_sha256": describe_input(path)["sha256"],
                          "manifest_sha256": describe_input(experiment.manifest)["sha256"],
                          **{f"{arm.name}_manifest_sha256": describe_input(arm.manifest)["sha256"]
                             for arm in experiment.arms if arm.manifest}}, overwrite)
    status_file = output / "status.json"
    status = json.loads(status_file.read_text()) if status_file.is_file() else {}
    done: dict[str, dict[int, Path]] = {arm.name: {} for arm in experiment.arms}
    checkpoints: dict[str, dict[int, Path]] = {arm.name: {} for arm in experiment.arms}
    cells = [(arm, seed) for arm in experiment.arms for seed in experiment.seeds_of(arm)]
    for arm, seed in cells:  # cells an earlier run finished and this one does not run
        entry = status.get(f"{arm.name}/seed{seed}", {})
        if seeds is not None and seed not in seeds and entry.get("state") == "done":
            done[arm.name][seed] = output / entry["samples"]
            checkpoints[arm.name][seed] = output / entry["checkpoint"] if entry.get("checkpoint") else None
    total = len(cells)
    cells = [(arm, seed) for arm, seed in cells if seeds is None or seed in seeds]
    for index, (arm, seed) in enumerate(cells, start=1):
        cell = f"{arm.name}/seed{seed}"
        started = time.perf_counter()
        log(f"── experiment {experiment.name}: {cell} ({index} of {len(cells)}) ──")
        try:
            if arm.after is None:
                checkpoint = train_cell(experiment, arm, seed, output, log)
            elif seed not in checkpoints[arm.after]:
                raise StageError(f"its parent {arm.after}/seed{seed} did not finish")
            else:
                checkpoint = posttrain_cell(experiment, arm, checkpoints[arm.after][seed], seed, output)
            checkpoints[arm.name][seed] = checkpoint
            samples = run_cell(experiment, arm, seed, checkpoint, output)
        except FAILURES as exc:
            status[cell] = {"state": "failed", "error": " ".join(str(exc).split())[:500]}
            log(f"✗ {cell} failed: {status[cell]['error']}")
        else:
            done[arm.name][seed] = samples
            before = status.get(cell, {})
            elapsed = seconds = round(time.perf_counter() - started, 1)
            if before.get("state") == "done" and before.get("seconds"):  # found done: keep what it cost to make
                seconds = max(seconds, before["seconds"])
            status[cell] = {"state": "done", "samples": str(samples.relative_to(output)),
                            # relative to OUT where it lies inside (the folder moves, no machine path in it)
                            "checkpoint": os.path.relpath(checkpoint, output) if checkpoint.resolve().is_relative_to(
                                output.resolve()) else str(checkpoint),
                            "seconds": seconds}
            log(f"✓ {cell} done in {elapsed:.0f} s")
        atomic_write_text(status_file, json.dumps(status, indent=1) + "\n")
    failed = [cell for cell, entry in status.items() if entry["state"] == "failed"]
    arms = {name: folders for name, folders in done.items() if folders}
    lines = []
    if experiment.arms[0].name in arms and len(arms) > 1:
        against = {arm.name: experiment.against(arm) for arm in experiment.arms[1:]
                   if arm.name in arms and experiment.against(arm) in arms}
        comparison, per_seed = experiment_table(arms, resamples, labelled=bool(experiment.evaluation.labels),
                                                against=against)
        per_seed += held_out_lines(arms, output / "held_out.png")
        table = to_markdown(comparison) + "\n\n" + "\n".join(per_seed)
        atomic_write_text(output / "table.md", table + "\n")
        write_csv(comparison, output / "table.csv")
        plot(comparison, output / "table.png")
        lines += [*table.splitlines(), f"→ {output}/ (table.md, table.csv, table.png, status.json)"]
        payload = {"arms": comparison.rows, "per_training_seed": per_seed}
        pairs = [(name, parent) for name, parent in against.items()] + [(c.treatment, c.control)
                                                                          for c in experiment.contrasts]
        cells = load_cells(arms)  # each cell's clips read once for the deltas and the means
        deltas = seed_deltas(arms, pairs, cells)
        write_seed_deltas(deltas, output / "seed_deltas.csv")
        means = arm_means(arms, cells)
        write_rows(means, output / "arm_means.csv", ["arm", "training_seed", "metric", "value"])
        lines += format_arm_means(means)
        payload["arm_means"] = means
        if experiment.contrasts:
            contrasts = contrast_table(experiment.contrasts, deltas)
            payload["contrasts"] = contrasts
            contrast_lines = format_contrasts(contrasts)
            atomic_write_text(output / "contrasts.md", "\n".join(contrast_lines) + "\n")
            lines += contrast_lines
        lines.append(f"→ {output}/seed_deltas.csv (every metric's delta per training seed), arm_means.csv")
    else:
        payload = {"arms": []}
        lines.append("no table: the first arm (the baseline) and at least one other must finish")
    payload.update(status=status, failed=failed)
    atomic_write_text(output / "summary.json", json.dumps(payload, indent=1, default=str) + "\n")
    if failed:
        raise StageError(f"{len(failed)} of {total} arm × seed runs failed ({', '.join(failed[:4])}); see "
                         f"{status_file}. The table holds the others; fix the cause and run the same command again")
    return payload, lines

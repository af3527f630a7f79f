"""The experiment table: each arm against the first, pooled over training seeds, prompt as the unit.

An arm's clips from all its training seeds pool into one run whose clip keys are
(prompt id, "training seed:sampling seed"), so `paired_deltas` pairs the same prompt, training
seed and starting noise across arms and averages per prompt before testing: P prompts, however
many seeds. Beside the pooled test, the delta of each training seed on its own shows whether
one lucky seed carries the effect.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from scoreaware.core.files import save_figure
from scoreaware.evaluate.compare import METRICS, Comparison, Run, adjust_holm, load_run, paired_deltas, reference_of
from scoreaware.evaluate.embeddings import load_reference
from scoreaware.evaluate.frechet import Stats, bootstrap_frechet, frechet_from_stats
from scoreaware.evaluate.metrics import mean_interval
from scoreaware.evaluate.stats import paired_prompt_test
from scoreaware.schemas.fields import CLAP_SCORE, REWARD


def pooled_run(name: str, folders: dict[int, object]) -> Run:
    """One run of an arm from its scored samples folders, keyed by training seed."""
    clips, clap = {}, {}
    first = None
    for training_seed, folder in sorted(folders.items()):
        run = load_run(folder, name)
        first = first or run
        labels = Path(folder) / "eval" / "labels.json"
        hits = json.loads(labels.read_text()) if labels.is_file() else {}
        for (prompt, seed), row in run.clips.items():
            key = (prompt, f"{training_seed}:{seed}")
            clips[key] = {**row, "label_hit": float(hits[row["id"]]) if row["id"] in hits else None}
            if (prompt, seed) in run.clap:
                clap[key] = run.clap[(prompt, seed)]
    return Run(name, first.path, first.scores, clips, clap)


def arm_row(run: Run, reference: Stats, resamples: int) -> dict:
    """FAD-CLAP, CLAP score and reward of one pooled arm, intervals over prompts."""
    keys = sorted(run.clips)
    prompts = [prompt for prompt, _ in keys]
    embeddings = np.stack([run.clap[k] for k in keys])
    fad = frechet_from_stats(Stats.of(embeddings), reference).value
    clap = mean_interval([run.clips[k][CLAP_SCORE] for k in keys], bounds=(-1.0, 1.0), groups=prompts)
    reward = mean_interval([run.clips[k]["reward"] for k in keys], groups=prompts)
    return {"stage": run.name, "n": len(keys), "prompts": len(set(prompts)), "fad_clap": fad,
            "fad_clap_ci": list(bootstrap_frechet(embeddings, reference, resamples=min(resamples, 500),
                                                  groups=prompts)),
            CLAP_SCORE: clap["mean"], "clap_score_ci": clap["ci"], REWARD: reward["mean"],
            "reward_ci": reward["ci"]}


def experiment_table(arms: dict[str, dict[int, object]], resamples: int = 2000, labelled: bool = False,
                     against: dict[str, str] | None = None) -> tuple[Comparison, list[str]]:
    """(the comparison of every arm with the one it changes, lines of per-training-seed deltas and,
    when `labelled`, of the label accuracy: the share of clips whose class the CLAP hears).

    `arms` maps arm name → {training seed: scored samples folder}, the first arm the baseline;
    `against` maps an arm to the arm it is one change from (default: the first; a post-training
    arm names its parent). An arm whose reference arm did not finish gets no deltas.
    """
    runs = {name: pooled_run(name, folders) for name, folders in arms.items()}
    first = next(iter(runs.values()))
    parent_of = {name: (against or {}).get(name, first.name) for name in list(runs)[1:]}
    reference = load_reference(reference_of(first))[0]["clap"].stats
    rows = []
    lines = []
    for name, run in runs.items():
        row = arm_row(run, reference, resamples)
        base = runs.get(parent_of.get(name, ""))
        if base is not None:
            # pair only the training seeds both arms finished: one failed seed of either arm drops that
            # seed from this comparison (and says so), not the whole table
            shared = sorted(set(arms[name]) & set(arms[base.name]))
            if set(shared) != set(arms[name]) | set(arms[base.name]):
                lines.append(f"{name} vs {base.name}: paired over training seeds {shared} only (the others did not "
                             "finish for both)")
                run = pooled_run(name, {s: arms[name][s] for s in shared}) if shared else None
                base = pooled_run(base.name, {s: arms[base.name][s] for s in shared}) if shared else None
            if run is not None and base is not None:
                row.update(paired_deltas(base, run, reference, resamples), against=base.name)
            run = runs[name]
        if labelled:
            row.update(label_row(base or run, run))
        rows.append(row)
    adjust_holm(rows, METRICS + (("label",) if labelled else ()))
    lines = ([label_line(row) for row in rows] if labelled else []) + lines
    for name, run in list(runs.items())[1:]:
        base = runs.get(parent_of[name])
        if base is None:
            lines.append(f"{name}: no deltas (its reference arm {parent_of[name]} did not finish)")
            continue
        shared = sorted(set(arms[name]) & set(arms[base.name]))
        deltas = []
        for training_seed in shared:
            keys = [k for k in run.clips if k[1].split(":")[0] == str(training_seed) and k in base.clips]
            deltas.append(np.mean([run.clips[k][CLAP_SCORE] - base.clips[k][CLAP_SCORE] for k in keys]))
        lines.append(f"{name}: ΔCLAP vs {base.name} by training seed " + ", ".join(
            f"{seed} {delta:+.4f}" for seed, delta in zip(shared, deltas)))
    chained = any(parent != first.name for parent in parent_of.values())
    return Comparison(list(runs.values()), rows, baseline=None if chained else first.name), lines


def label_row(base: Run, run: Run) -> dict:
    """Label accuracy of `run` (interval over prompts) and, against `base`, its paired delta."""
    keys = sorted(k for k in run.clips if run.clips[k]["label_hit"] is not None)
    accuracy = mean_interval([run.clips[k]["label_hit"] for k in keys], bounds=(0.0, 1.0),
                             groups=[k[0] for k in keys])
    out = {"label": accuracy["mean"], "label_ci": accuracy["ci"], "label_clips": accuracy["n"]}
    if run is not base:
        shared = [k for k in keys if k in base.clips and base.clips[k]["label_hit"] is not None]
        test = paired_prompt_test([k[0] for k in shared], [base.clips[k]["label_hit"] for k in shared],
                                  [run.clips[k]["label_hit"] for k in shared])
        out.update(d_label=test and test["delta"], d_label_ci=test and test["ci"], p_label=test and test["p"])
    return out


def label_line(row: dict) -> str:
    """One arm's label accuracy, its interval and (against the baseline) delta, p and Holm p."""
    if row["label"] is None:
        return f"{row['stage']}: label heard —"
    ci = row["label_ci"] or [float("nan")] * 2
    text = f"{row['stage']}: label heard {row['label']:.3f} [{ci[0]:.3f}, {ci[1]:.3f}] of {row['label_clips']} clips"
    if row.get("d_label") is not None:
        dci = row["d_label_ci"]
        text += (f"; Δ {row['d_label']:+.3f} [{dci[0]:+.3f}, {dci[1]:+.3f}] (p={row['p_label']:.3g}, "
                 f"Holm {row['p_label_holm']:.3g})" + (" *" if row["p_label_holm"] < 0.05 else ""))
    return text


def held_out_lines(arms: dict[str, dict[int, object]], figure: Path) -> list[str]:
    """Each arm's validation flow loss on the held-out segments (mean ± sd over training seeds),
    overall and per timestep bin, and a plot of the per-bin curves; [] when none was measured."""
    import matplotlib
    import matplotlib.pyplot as plt

    curves = {}
    for name, folders in arms.items():
        found = [json.loads(path.read_text())["val_flow_per_bin"] for folder in folders.values()
                 if (path := Path(folder) / "eval" / "held_out_flow.json").is_file()]
        if found:
            curves[name] = np.asarray(found, dtype=float)  # (training seeds, bins)
    if not curves:
        return []
    bins = next(iter(curves.values())).shape[1]
    lines = [f"held-out flow loss (EMA weights, {bins} t bins from clean t=0 to noise t=1; mean ± sd over "
             "training seeds):"]
    for name, values in curves.items():
        overall = values.mean(axis=1)
        lines.append(f"{name}: {overall.mean():.4f} ± {overall.std(ddof=1) if len(overall) > 1 else 0.0:.4f}"
                     f" (n={len(overall)}); by bin " + " ".join(f"{v:.3f}" for v in values.mean(axis=0)))
    matplotlib.use("Agg")
    fig, ax = plt.subplots(figsize=(6, 3.6))
    centers = (np.arange(bins) + 0.5) / bins
    for name, values in curves.items():
        ax.errorbar(centers, values.mean(axis=0), yerr=values.std(axis=0), label=name, capsize=2, marker="o", ms=3)
    ax.set_xlabel("t (0 clean, 1 noise)")
    ax.set_ylabel("held-out flow loss")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    save_figure(fig, figure)
    return lines

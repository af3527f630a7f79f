"""The per-stage decomposition table: runs in order, their metrics, and paired tests between
consecutive stages (baseline → score-conditioned → expert iteration → cross-load → CRPO).

Clips pair across runs by (prompt id, seed): the same prompt from the same starting noise.
The statistical unit is the prompt (`scoreaware.evaluate.stats`): per-clip metrics (CLAP score,
reward) are averaged per prompt and the paired deltas t-tested across prompts; FAD, a set
metric against one fixed reference, gets a sign-flip permutation test and a bootstrap interval
over prompts. Every p of the table is also Holm-adjusted over the whole table. A clip present
in one run and missing in another is an error that names it.
"""

from __future__ import annotations

import csv
import json
import math
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

import matplotlib
import matplotlib.pyplot as plt
import numpy as np

from scoreaware.core.files import atomic_write_text, save_figure
from scoreaware.core.provenance import library_versions
from scoreaware.core.redact import redact
from scoreaware.evaluate.embeddings import EmbeddingError, check_compatible, load_reference, manifest_embeddings
from scoreaware.evaluate.frechet import ResampledFrechet
from scoreaware.evaluate.results import read_clips_csv, read_generation, read_scores
from scoreaware.evaluate.stats import holm, paired_prompt_set_test, paired_prompt_test
from scoreaware.schemas.fields import CLAP_SCORE, PROMPT_ID, REWARD


@dataclass
class Run:
    """One scored run of generated clips."""

    name: str
    path: Path
    scores: dict
    clips: dict[tuple[str, int], dict]
    clap: dict[tuple[str, int], np.ndarray] = field(default_factory=dict)


def load_run(path: str | os.PathLike, name: str | None = None) -> Run:
    """A samples folder that `eval score` has scored (``eval/scores.json``, ``eval/clips.csv``)."""
    path = Path(path)
    scores_file = path / "eval" / "scores.json"
    if not scores_file.is_file():
        raise EmbeddingError(f"{path}: not scored yet (no eval/scores.json); run `scoreaware eval score {path} "
                             "--reference REF.npz` first")
    scores = read_scores(scores_file)
    if not (path / "eval" / "clips.csv").is_file():
        raise EmbeddingError(f"{path / 'eval'}: no clips.csv beside scores.json; score the run again with "
                             "`eval score --overwrite`")
    rows = read_clips_csv(path / "eval" / "clips.csv")
    if not rows:
        raise EmbeddingError(f"{path / 'eval' / 'clips.csv'}: no clips")
    clips = {(row[PROMPT_ID], row["seed"]): row for row in rows}
    manifest = path / "eval" / scores["manifests"]["clap"]
    embeddings = manifest_embeddings(manifest)
    by_id = dict(zip(embeddings.ids, embeddings.embeddings))
    missing = [row["id"] for row in rows if row["id"] not in by_id]
    if missing:  # a damaged or replaced embeddings manifest: the clips would not pair
        raise EmbeddingError(f"{manifest}: no CLAP embedding for {len(missing)} clip(s) of clips.csv (first: "
                             f"{missing[0][:60]!r}); score the run again with `eval score --overwrite`")
    clap = {key: by_id[row["id"]] for key, row in clips.items() if row["id"] in by_id}
    return Run(name or path.name, path, scores, clips, clap)


def paired_keys(a: Run, b: Run) -> list[tuple[str, int]]:
    """The clip keys both runs hold; an error naming the first clips one of them lacks."""
    only_a, only_b = sorted(a.clips.keys() - b.clips.keys()), sorted(b.clips.keys() - a.clips.keys())
    if only_a or only_b:
        missing = [f"prompt {p} seed {s} is in {a.name} but not in {b.name}" for p, s in only_a[:3]]
        missing += [f"prompt {p} seed {s} is in {b.name} but not in {a.name}" for p, s in only_b[:3]]
        raise EmbeddingError("the runs do not hold the same clips, so they cannot be paired: " + "; ".join(missing)
                             + " — generate every run with the same prompts, --seeds and --seed")
    differ = [(key, a.clips[key].get("prompt"), b.clips[key].get("prompt")) for key in sorted(a.clips)
              if a.clips[key].get("prompt") != b.clips[key].get("prompt")]
    if differ:
        (p, s), x, y = differ[0]
        raise EmbeddingError(f"{len(differ)} clip(s) share prompt id and seed but not the prompt text, so they cannot "
                             f"be paired: prompt {p} seed {s} is {str(x)[:60]!r} in {a.name} and {str(y)[:60]!r} in "
                             f"{b.name} — generate every run from the same prompts file")
    return sorted(a.clips)


# the sampling settings that define a clip besides its prompt and seed (eval generate's generation.json)
CLIP_SETTINGS = ("steps", "cfg", "score", "negative_prompt", "prefix", "seconds", "target_lufs", "demucs",
                 "demucs_passes", "seeds_per_prompt")


def settings_differences(a: Run, b: Run) -> list[str]:
    """'cfg 4.0 → 3.0' for each sampling setting in which run `b` differs from run `a`."""
    sa, sb = _generation_settings(a), _generation_settings(b)
    return [f"{key} {sa.get(key)!r} → {sb.get(key)!r}" for key in CLIP_SETTINGS
            if key in sa and key in sb and sa[key] != sb[key]]


def _generation_settings(run: Run) -> dict:
    return read_generation(run.path / "generation.json")


@dataclass
class Comparison:
    runs: list[Run]
    rows: list[dict]
    notes: list[str] = field(default_factory=list)  # what differs between paired runs besides the stage
    baseline: str | None = None  # every delta is against this stage (an experiment); None: the previous stage

    @property
    def against(self) -> str:
        if self.baseline:
            return f"`{self.baseline}`"
        if any("against" in row for row in self.rows):
            return "the stage it changes (the `vs` column)"
        return "the previous stage"


def compare_runs(runs: list[Run], resamples: int = 2000, seed: int = 0) -> Comparison:
    """Metrics per run and prompt-level paired tests between consecutive runs (one reference)."""
    if len(runs) < 1:
        raise EmbeddingError("give at least one run")
    for run in runs[1:]:
        if run.scores["reference"]["sha256"] != runs[0].scores["reference"]["sha256"]:
            raise EmbeddingError(f"{run.name} was scored against another reference than {runs[0].name}; "
                                 "score every run against the same REF.npz")
        check_compatible(run.scores["fingerprints"]["clap"], runs[0].scores["fingerprints"]["clap"],
                         f"CLAP embeddings of {run.name} and {runs[0].name}")
    reference = load_reference(reference_of(runs[0]))[0]["clap"]
    rows, notes = [], []
    for index, run in enumerate(runs):
        metrics = run.scores["metrics"]
        row = {"stage": run.name, "n": metrics["fad_clap"]["n"], "prompts": len({k[0] for k in run.clips}),
               "fad_clap": metrics["fad_clap"]["fad"], "fad_clap_ci": metrics["fad_clap"]["ci"],
               CLAP_SCORE: metrics[CLAP_SCORE]["mean"], "clap_score_ci": metrics[CLAP_SCORE]["ci"],
               "reward": (metrics.get(REWARD) or {}).get("mean"),
               "reward_ci": (metrics.get(REWARD) or {}).get("ci")}
        if index:
            before = runs[index - 1]
            differs = settings_differences(before, run)
            if differs:
                notes.append(f"{before.name} → {run.name} also changes the sampling: {', '.join(differs)}")
            row.update(paired_deltas(before, run, reference.stats, resamples, seed))
        rows.append(row)
    adjust_holm(rows)
    return Comparison(runs, rows, notes)


METRICS = ("fad_clap", CLAP_SCORE, REWARD)


def paired_deltas(a: Run, b: Run, reference, resamples: int = 2000, seed: int = 0) -> dict:
    """b − a for each metric with the prompt as the unit: d_<metric>, its interval, p, and the
    permutation floor of FAD's p."""
    keys = paired_keys(a, b)
    prompts = [prompt for prompt, _ in keys]
    out: dict = {}
    for metric in (CLAP_SCORE, REWARD):
        test = paired_prompt_test(prompts, [a.clips[k][metric] for k in keys], [b.clips[k][metric] for k in keys])
        out.update({f"d_{metric}": test and test["delta"], f"d_{metric}_ci": test and test["ci"],
                    f"p_{metric}": test and test["p"]})
    fd = ResampledFrechet(np.vstack([np.stack([a.clap[k] for k in keys]), np.stack([b.clap[k] for k in keys])]),
                          reference)
    fad = paired_prompt_set_test(prompts, lambda first, second: fd(second) - fd(first), resamples, seed)
    out.update(d_fad_clap=fad["delta"], d_fad_clap_ci=fad["ci"], p_fad_clap=fad["p"], p_floor_fad_clap=fad["p_floor"],
               paired_prompts=fad["n_prompts"], paired_clips=fad["n_clips"])
    return out


def adjust_holm(rows: list[dict], metrics: tuple[str, ...] = METRICS) -> None:
    """Holm over every p of the table (all rows after the first × metrics): p_<metric>_holm."""
    slots = [(row, metric) for row in rows[1:] for metric in metrics]
    adjusted = holm([row.get(f"p_{metric}") for row, metric in slots])
    for (row, metric), value in zip(slots, adjusted):
        row[f"p_{metric}_holm"] = value


def reference_of(run: Run) -> Path:
    """The reference file `run` was scored against (recorded relative to its eval/ folder)."""
    candidate = Path(run.scores["reference"]["path"])
    return candidate if candidate.is_absolute() else (run.path / "eval" / candidate).resolve()


# ---------------------------------------------------------------------------------- output
def _fmt(value, digits: int = 4) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    return f"{value:+.{digits}f}" if isinstance(value, float) and value < 0 else f"{value:.{digits}f}"


def _delta(row: dict, metric: str) -> str:
    value, p, adjusted = row.get(f"d_{metric}"), row.get(f"p_{metric}"), row.get(f"p_{metric}_holm")
    if value is None:
        return "—"
    ci = row.get(f"d_{metric}_ci")
    text = f"{value:+.4f}" + (f" [{ci[0]:+.4f}, {ci[1]:+.4f}]" if ci else "")
    if p is not None:
        text += f" (p={p:.3g}, Holm {adjusted:.3g})" + (" *" if adjusted < 0.05 else "")
    return text


def to_markdown(comparison: Comparison) -> str:
    """The decomposition table: metrics per stage, deltas with 95 % intervals, prompt-level p and
    Holm-adjusted p (* Holm p < 0.05)."""
    chained = not comparison.baseline and any("against" in row for row in comparison.rows)
    lines = ["| stage | " + ("vs | " if chained else "") + "prompts / clips | FAD-CLAP [95% CI] | ΔFAD-CLAP | "
             "CLAP score | ΔCLAP | reward | Δreward |",
             "|---|---|---|---|---|---|---|---|" + ("---|" if chained else "")]
    for row in comparison.rows:
        ci = row["fad_clap_ci"]
        vs = f" {row.get('against', '—')} |" if chained else ""
        lines.append(f"| {row['stage']} |{vs} {row.get('prompts', '—')} / {row['n']} | {_fmt(row['fad_clap'])} "
                     f"[{_fmt(ci[0])}, {_fmt(ci[1])}] | {_delta(row, 'fad_clap')} | {_fmt(row['clap_score'])} | "
                     f"{_delta(row, 'clap_score')} | {_fmt(row['reward'])} | {_delta(row, 'reward')} |")
    floors = sorted({row["p_floor_fad_clap"] for row in comparison.rows[1:] if row.get("p_floor_fad_clap")})
    lines.append("")
    lines.append(f"Δ: this stage minus {comparison.against}, on the same prompts (text) and seeds"
                 + (" — but see the notes: the sampling differs" if comparison.notes else " and sampling settings")
                 + ". The unit is the prompt: clips are averaged per prompt, CLAP and reward deltas t-tested "
                   "across prompts; FAD (one reference, same n in every stage) by a sign-flip permutation "
                   "test and a bootstrap interval over prompts"
                 + (f" (its smallest possible p here: {floors[0]:.3g})" if floors else "")
                 + ". Holm: adjusted over every test in the table; * Holm p < 0.05.")
    lines += [f"note: {note}" for note in comparison.notes]
    return "\n".join(lines)


CSV_COLUMNS = ["stage", "against", "prompts", "n", "fad_clap", "fad_clap_ci", "d_fad_clap", "d_fad_clap_ci",
               "p_fad_clap", "p_fad_clap_holm", "p_floor_fad_clap", CLAP_SCORE, "clap_score_ci", "d_clap_score",
               "d_clap_score_ci", "p_clap_score", "p_clap_score_holm", "reward", "reward_ci", "d_reward",
               "d_reward_ci", "p_reward", "p_reward_holm"]


def write_csv(comparison: Comparison, path: Path) -> Path:
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=CSV_COLUMNS, extrasaction="ignore")
        writer.writeheader()
        for row in comparison.rows:
            writer.writerow({k: json.dumps(v) if isinstance(v, list) else v for k, v in row.items()})
    tmp.replace(path)
    return path


def plot(comparison: Comparison, path: Path) -> Path:
    """One panel per metric, stages left to right, 95% intervals (the submission's layout)."""

    matplotlib.use("Agg")

    panels = [("fad_clap", "FAD-CLAP (lower is better)"), (CLAP_SCORE, "CLAP score"), (REWARD, REWARD)]
    panels = [p for p in panels if any(r.get(p[0]) is not None for r in comparison.rows)]
    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 3.4), squeeze=False)
    names = [r["stage"] for r in comparison.rows]
    x = np.arange(len(names))
    for ax, (key, title) in zip(axes[0], panels):
        values = np.array([r.get(key) if r.get(key) is not None else np.nan for r in comparison.rows], dtype=float)
        cis = [r.get(f"{key}_ci") for r in comparison.rows]
        low = np.array([v - c[0] if c else 0.0 for v, c in zip(values, cis)])
        high = np.array([c[1] - v if c else 0.0 for v, c in zip(values, cis)])
        ax.errorbar(x, values, yerr=[np.clip(low, 0, None), np.clip(high, 0, None)], fmt="o-", capsize=4)
        for i, row in enumerate(comparison.rows[1:], start=1):
            p = row.get(f"p_{key}_holm")
            if p is not None and p < 0.05:
                ax.annotate("*", (x[i], values[i]), textcoords="offset points", xytext=(6, 6), color="tab:red")
        ax.set_xticks(x, names, rotation=20, ha="right")
        ax.set_title(title, fontsize=10)
        ax.grid(alpha=0.3)
    fig.suptitle(f"same prompts and seeds; * Holm p < 0.05 vs {comparison.against.strip('`')}, prompt-level tests",
                 fontsize=9)
    return save_figure(fig, path)


def as_json(comparison: Comparison) -> dict:
    return {"stages": comparison.rows, "notes": comparison.notes}


def sanitized(value):
    """JSON-safe: NaN and infinities become None."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: sanitized(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [sanitized(v) for v in value]
    return value



def run_compare(runs: tuple[Path, ...] | list[Path], names: list[str] | None = None, output: Path | None = None,
                resamples: int = 2000) -> tuple[dict, list[str]]:
    """`eval compare` as a library call: the decomposition table of `runs` (scored samples folders,
    in order) written to `output` (compare.md, .csv, .png, provenance); (payload, summary lines)."""

    labels = list(names) if names else [None] * len(runs)
    comparison = compare_runs([load_run(r, n) for r, n in zip(runs, labels)], resamples=resamples)
    output = Path(output) if output else Path(runs[0]).parent / "compare"
    output.mkdir(parents=True, exist_ok=True)
    table = to_markdown(comparison)
    (output / ".compare.md.tmp").write_text(table + "\n")
    (output / ".compare.md.tmp").replace(output / "compare.md")
    write_csv(comparison, output / "compare.csv")
    figure = plot(comparison, output / "compare.png")
    payload = {**as_json(comparison), "outputs": {"markdown": str(output / "compare.md"),
                                                  "csv": str(output / "compare.csv"), "figure": str(figure)}}
    provenance = {"stage": "compare", "command": redact(" ".join(sys.argv)), "runs": [str(r) for r in runs],
                  "names": [row["stage"] for row in comparison.rows], "resamples": resamples,
                  "reference": comparison.runs[0].scores["reference"], "versions": library_versions("scipy")}
    atomic_write_text(output / "compare.provenance.json", json.dumps(provenance, indent=1, default=str))
    return payload, [*table.splitlines(), f"→ {output}/ (compare.md, compare.csv, compare.png)"]

"""Genre heard against training minutes: how many `--train-steps` the demo's generator needs.

Trains the demo's score-aware recipe (tiny DiT, mel-vae latents, Beta t, reward conditioning,
REPA on the CLAP; the cosine schedule ends at each run's own last step, so every point is a
separate run of that length, as `demo run --train-steps N` would train) on a finished demo's
encoded manifest, generates the demo's 42 evaluation clips (7 genre prompts × 6 seeds, 10 s, its
CFG and score) from each, and measures the genre the domain CLAP hears. Writes a JSON and a plot.

    python benchmarks/genre_vs_training.py --workdir manifests/demo [--steps 300 600 1000 1600]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from scoreaware.demo.domain.build import DEFAULT_MODELS  # noqa: E402
from scoreaware.demo.pipeline import (  # noqa: E402
    EVAL_PROMPTS,
    EVAL_SECONDS,
    EVAL_SEEDS,
    MAX_FRAMES,
    SAMPLE_CFG,
    SAMPLE_SCORE,
)
from scoreaware.demo.truth import sample_genres  # noqa: E402
from scoreaware.evaluate.score_run import score_run  # noqa: E402
from scoreaware.train.fit import fit_or_resume  # noqa: E402
from scoreaware.train.prompts import read_prompts  # noqa: E402
from scoreaware.train.sample import SampleSettings, run_generation  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workdir", type=Path, default=Path("manifests") / "demo", help="A finished `demo run`.")
    parser.add_argument("--steps", type=int, nargs="+", default=[300, 600, 1000, 1600])
    parser.add_argument("--out", type=Path, default=Path("docs") / "genre_vs_training")
    args = parser.parse_args()
    work = args.workdir / "genre_vs_training"
    prompts = work / "prompts.csv"
    work.mkdir(parents=True, exist_ok=True)
    prompts.write_text(EVAL_PROMPTS)
    clap = str(DEFAULT_MODELS / "clap")
    points = []
    for steps in args.steps:
        record = work / f"runs_{steps}" / "train_minutes.json"  # a run trained before keeps its own time
        start = time.perf_counter()
        checkpoint = fit_or_resume(work / f"runs_{steps}", (
            f"manifest={args.workdir / 'encode.jsonl.gz'}", f"run_dir={work / f'runs_{steps}'}", f"steps={steps}",
            "batch_size=16", "lr=1e-3", "lr_schedule=cosine", f"max_frames={MAX_FRAMES}", f"ckpt_every={steps}",
            "timesteps=beta", "score_head=global_adaln", "repa=clap"), preset="tiny")
        if record.is_file():
            minutes = json.loads(record.read_text())["minutes"]
        else:
            minutes = (time.perf_counter() - start) / 60
            record.write_text(json.dumps({"minutes": minutes}) + "\n")
        clips = work / f"clips_{steps}"
        settings = SampleSettings(seconds=EVAL_SECONDS, score=SAMPLE_SCORE, cfg=SAMPLE_CFG)
        run_generation(checkpoint, read_prompts(prompts), clips, settings,
                       seeds_per_prompt=EVAL_SEEDS, resume=True, prompts_file=str(prompts))
        score_run(clips, args.workdir / "eval" / "reference.npz", workers=0, bootstrap=10, mad=False)
        genre = sample_genres(clips, clap)
        points.append({"steps": steps, "train_minutes": round(minutes, 2), **genre})
        print(json.dumps(points[-1]), flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".json").write_text(json.dumps(points, indent=1) + "\n")
    figure, axis = plt.subplots(figsize=(6, 3.5))
    minutes = [p["train_minutes"] for p in points]
    accuracy = [p["accuracy"] for p in points]
    axis.plot(minutes, accuracy, "o-")
    for p in points:
        axis.annotate(f"{p['steps']} steps", (p["train_minutes"], p["accuracy"]), textcoords="offset points",
                      xytext=(4, -12), fontsize=8)
    axis.axhline(1 / 7, color="grey", linestyle=":", label="chance (1/7)")
    axis.axhline(0.6, color="tab:red", linestyle="--", label="target 0.6")
    axis.set(xlabel="training minutes (one run, this machine)", ylabel="genre heard (42 clips)", ylim=(0, 1),
             title="demo generator: genre heard vs training")
    axis.legend(loc="lower right", fontsize=8)
    figure.tight_layout()
    figure.savefig(args.out.with_suffix(".png"), dpi=120)
    print(f"→ {args.out.with_suffix('.png')}, {args.out.with_suffix('.json')}")


if __name__ == "__main__":
    main()

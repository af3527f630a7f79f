"""The shipped base generator at five sampler settings on 48 development prompts (not the evaluation
set: other attribute combinations, seed 402), one clip each at seed 500, heard by the judge.
Run from this folder with the core environment's python: outputs cfg*_s*/ and sweep.json."""
import csv
import json
from pathlib import Path

from scoreaware.demo.domain.build import DEFAULT_MODELS
from scoreaware.demo.tiny_models import make_tiny_t5
from scoreaware.demo.world.captions import prompt_of
from scoreaware.demo.world.prompts import combinations
from scoreaware.evaluate.adherence import judge_run
from scoreaware.train.prompts import read_prompts
from scoreaware.train.sample import SampleSettings, run_generation

with open("dev48.csv", "w", newline="") as f:
    writer = csv.writer(f)
    writer.writerow(["id", "prompt", "instrument", "tempo_band", "mode"])
    for i, c in enumerate(combinations(48, seed=402)):
        writer.writerow([f"d{i:02d}", prompt_of(c), c["instrument"], c["tempo_band"], c["mode"]])
base = DEFAULT_MODELS / "world_generator" / "generator.pt"
t5 = "t5" if Path("t5/config.json").is_file() else str(make_tiny_t5("t5", seed=0))  # the demo's stand-in
out = {}
for cfg, steps in [(1.0, 25), (2.0, 25), (3.0, 25), (4.5, 25), (2.0, 50)]:
    name = f"cfg{cfg}_s{steps}"
    settings = SampleSettings(steps=steps, cfg=cfg, score=None, seconds=10.0, seed=500)
    run_generation(base, read_prompts("dev48.csv"), Path(name), settings, resume=True, text_encoder=t5)
    found = judge_run(Path(name), DEFAULT_MODELS / "judge")
    out[name] = {a: round(found[a]["rate_prompts"], 3) for a in ("instrument", "tempo_band", "mode")}
    print(name, out[name], flush=True)
with open("sweep.json", "w") as f:
    json.dump(out, f, indent=1)

"""Adherence against training steps of docs/results/world-generator (its judge tables), as adherence.png.

    .tox/core/bin/python docs/results/world-generator/plot.py
"""

import csv
import json
from pathlib import Path

from scoreaware.demo.domain.build import DEFAULT_MODELS
from scoreaware.evaluate.adherence import adherence, adherence_curve

HERE = Path(__file__).parent
ceilings = json.loads((DEFAULT_MODELS / "judge" / "JUDGE.json").read_text())["ceilings"]
points = []
for table in sorted(HERE.glob("judge_*.csv")):
    with open(table, newline="") as f:
        rows = [{**r, **{k: float(r[k]) for k in r if k.startswith(("hit_", "instrument_margin", "mode_margin"))}}
                for r in csv.DictReader(f)]
    points.append((int(table.stem.split("_")[1]), adherence(rows, ceilings)))
print(adherence_curve(points, ceilings, HERE / "adherence.png",
                      xlabel="training steps (tiny preset, batch 16; 2400 steps ≈ 14 min here)"))

"""Adherence of the world's generator per checkpoint (its judge tables), as adherence.png.

    .tox/core/bin/python docs/results/world-generator/plot.py            # the 14-minute run (steps)
    .tox/core/bin/python docs/results/world-generator/plot.py 60min      # the 60-minute run (minutes)
    .tox/core/bin/python docs/results/world-generator/plot.py 2000clips  # 2,000 renders, 60 minutes

A folder with a minutes.json (run.sh writes it: each checkpoint's training minutes from file times)
is plotted against training minutes, otherwise against steps.
"""

import csv
import json
import sys
from pathlib import Path

from scoreaware.demo.domain.build import DEFAULT_MODELS
from scoreaware.evaluate.adherence import adherence, adherence_curve

HERE = Path(__file__).parent / (sys.argv[1] if len(sys.argv) > 1 else "")
ceilings = json.loads((DEFAULT_MODELS / "judge" / "JUDGE.json").read_text())["ceilings"]
minutes = json.loads((HERE / "minutes.json").read_text()) if (HERE / "minutes.json").is_file() else None
points = []
for table in sorted(HERE.glob("judge_*.csv")):
    with open(table, newline="") as f:
        rows = [{**r, **{k: float(r[k]) for k in r if k.startswith(("hit_", "instrument_margin", "mode_margin"))}}
                for r in csv.DictReader(f)]
    step = table.stem.split("_")[1]
    points.append((minutes[step] if minutes else int(step), adherence(rows, ceilings)))
xlabel = ("training minutes on this 2-core machine, measured alone (tiny preset, batch 16, ~8 steps/s)" if minutes
          else "training steps (tiny preset, batch 16; 2400 steps ≈ 14 min here)")
print(adherence_curve(points, ceilings, HERE / "adherence.png", xlabel=xlabel))

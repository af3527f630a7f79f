"""Two runs of the world's generator compared checkpoint by checkpoint, paired over the 48 prompts.

    .tox/core/bin/python docs/results/world-generator/paired.py 2000clips worldclap

For every step both folders judged (judge_<step>.csv, the same prompts and sampling seeds), the
per-prompt hit rate of B minus A for each attribute, its 95 % t-interval over prompts and p
(`evaluate.stats.paired_prompt_test`). One training seed per run: a within-seed comparison.
"""

import csv
import sys
from pathlib import Path

from scoreaware.evaluate.stats import paired_prompt_test

HERE = Path(__file__).parent
a_dir, b_dir = HERE / sys.argv[1], HERE / sys.argv[2]


def rows(path: Path) -> dict[str, dict]:
    with open(path, newline="") as f:
        return {r["id"]: r for r in csv.DictReader(f)}


print(f"B = {b_dir.name} minus A = {a_dir.name}, paired over prompts")
print("| step | Δ instrument [95 % CI], p | Δ tempo band, p | Δ mode, p |")
print("| --- | --- | --- | --- |")
for table in sorted(b_dir.glob("judge_*.csv")):
    other = a_dir / table.name
    if not other.is_file():
        continue
    a, b = rows(other), rows(table)
    ids = sorted(a.keys() & b.keys())
    prompts = [a[i]["prompt_id"] for i in ids]
    cells = []
    for attribute in ("instrument", "tempo_band", "mode"):
        key = f"hit_{attribute}"
        found = paired_prompt_test(prompts, [float(a[i][key]) for i in ids], [float(b[i][key]) for i in ids])
        cells.append(f"{found['delta']:+.3f} [{found['ci'][0]:+.3f}, {found['ci'][1]:+.3f}], p {found['p']:.3g}")
    print(f"| {int(table.stem.split('_')[1]):,} | " + " | ".join(cells) + " |")

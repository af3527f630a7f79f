#!/usr/bin/env bash
# One change from the shipped base generator: the "small" model (dim 128, 5.3 M parameters; tiny: dim 64,
# 1.1 M) on the same encoded corpus, recipe and training seed, for 3,600 steps (about the base's
# training minutes at a third of its steps/s), then 48 prompts × 2 clips per checkpoint heard by the judge.
# Usage (from the repository, after `tox -e core`), WORKDIR being a finished `demo train-world-generator --workdir`:
#   bash docs/results/world-generator/width/run.sh WORKDIR OUT
set -euo pipefail
REPO=$(pwd)
SA="$REPO/.tox/core/bin/scoreaware"
PY="$REPO/.tox/core/bin/python"
JUDGE="$REPO/src/scoreaware/demo/default_models/judge"
WORK=$(cd "$1" && pwd)
mkdir -p "$2" && cd "$2"
[ -d runs ] || $SA train fit --preset tiny --set model=small --set manifest="$WORK/encode.jsonl.gz" --set run_dir=runs \
  --set steps=3600 --set batch_size=16 --set lr=1e-3 --set lr_schedule=cosine --set max_frames=129 --set ckpt_every=900 \
  --set timesteps=logit_normal --set score_head=none --set seed=0
for ck in $(ls runs/*/checkpoints/*.pt | sort); do
  name=$(basename "$ck" .pt)
  [ -f "samples_$name/samples.jsonl" ] || $SA eval generate "$ck" --prompts "$REPO/src/scoreaware/demo/world/prompts48.csv" \
    -o "samples_$name" --seeds 2 --seconds 10 --cfg 2.0 --no-score
  $PY -c "from pathlib import Path; from scoreaware.evaluate.adherence import judge_run, format_adherence; print('\n'.join(format_adherence(judge_run(Path('samples_$name'), '$JUDGE'))))"
done

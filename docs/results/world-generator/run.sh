#!/usr/bin/env bash
# The world's generator, one run (docs/results.md, "The realistic world"): corpus -> ingest -> segment ->
# encode (the world codec) -> fit (tiny, 2400 steps) -> 48 prompts × 2 clips per checkpoint -> the judge.
# Usage: bash docs/results/world-generator/run.sh WORKDIR   (from the repository, after `tox -e core`)
# The 60-minute curve: STEPS=28000 CKPT=4000 bash docs/results/world-generator/run.sh WORKDIR
# (each checkpoint's training minutes, from file times, go to WORKDIR/minutes.json)
# More renders, the same recipe: CLIPS=2000 STEPS=28000 CKPT=4000 bash docs/results/world-generator/run.sh WORKDIR
# Another text conditioning on the same latents: FROM=DONE_WORKDIR CLAP=CLAP_DIR ... run.sh WORKDIR keeps FROM's
# latents and T5 (train encode keeps a cut's stored latent) and encodes only the CLAP text again with CLAP_DIR
set -euo pipefail
REPO=$(pwd)
SA="$REPO/.tox/core/bin/scoreaware"
PY="$REPO/.tox/core/bin/python"
MODELS="$REPO/src/scoreaware/demo/default_models"
STEPS=${STEPS:-2400}
CKPT=${CKPT:-600}
CLIPS=${CLIPS:-240}
CLAP=${CLAP:-$MODELS/clap}
mkdir -p "$1" && cd "$1"
if [ -n "${FROM:-}" ]; then
  FROM=$(cd "$FROM" && pwd)
  T5="$FROM/models/t5"
  # FROM's encoded cuts without their text conditioning, array paths made relative to this folder
  [ -f latents.jsonl.gz ] || $PY - "$FROM" <<'PYEOF'
import gzip, json, os, sys
src = sys.argv[1]
with gzip.open(os.path.join(src, "encode.jsonl.gz"), "rt") as f, gzip.open("latents.jsonl.gz", "wt") as g:
    for line in f:
        cut = json.loads(line)
        for key in ("clap_text_emb", "text_tokens", "latent_frames"):
            cut["custom"].pop(key, None)
        latent = cut["custom"]["latent"]
        latent["storage_path"] = os.path.relpath(os.path.join(src, latent["storage_path"]))
        g.write(json.dumps(cut) + "\n")
PYEOF
  INPUT=latents.jsonl.gz
else
  T5=models/t5
  [ -f corpus/truth.jsonl ] || $SA demo make-corpus corpus --clips $CLIPS --duration 20 --seed 7
  M=corpus/metadata
  [ -f ingest.jsonl.gz ] || $SA curate ingest corpus/audio -m $M/autotagging.tsv -m $M/captions.json -m $M/tracks.csv -o ingest.jsonl.gz
  [ -f segment.jsonl.gz ] || $SA curate segment ingest.jsonl.gz -o segment.jsonl.gz
  [ -f models/t5/config.json ] || $SA demo make-models models
  INPUT=segment.jsonl.gz
fi
[ -f encode.jsonl.gz ] || $SA train encode $INPUT -o encode.jsonl.gz --codec mel-vae --codec-model "$MODELS/world_codec" --text-encoder "$T5" --clap-model "$CLAP"
[ -d runs ] || $SA train fit --preset tiny --manifest encode.jsonl.gz --set run_dir=runs --set steps=$STEPS --set batch_size=16 --set lr=1e-3 --set lr_schedule=cosine --set max_frames=129 --set ckpt_every=$CKPT --set timesteps=logit_normal
$PY -c "
import json, os, glob
start = os.path.getmtime(sorted(glob.glob('runs/*/config.json'))[-1])
print(json.dumps({os.path.basename(c)[:-3]: round((os.path.getmtime(c) - start) / 60, 1)
                  for c in sorted(glob.glob('runs/*/checkpoints/*.pt'))}))" > minutes.json
for ck in $(ls runs/*/checkpoints/*.pt | sort); do
  name=$(basename "$ck" .pt)
  [ -f "samples_$name/samples.jsonl" ] || $SA eval generate "$ck" --prompts "$REPO/src/scoreaware/demo/world/prompts48.csv" -o "samples_$name" --seeds 2 --seconds 10 --cfg 2.0 --no-score
  $PY -c "from pathlib import Path; from scoreaware.evaluate.adherence import judge_run, format_adherence; print('\n'.join(format_adherence(judge_run(Path('samples_$name'), '$MODELS/judge'))))"
done

#!/usr/bin/env bash
# The mask-to-photo generator chosen on validation, on synthetic demo scenes at 64 px: for each seed's own
# split (a fifth of the non-test scenes for validation), each candidate generator learns from the training
# scenes (1200 steps of batch 8, width 0.25: the demo preset), is scored against the seed's validation
# photos (SWD, histogram distance, diversity_same_layout), renders 2 photos for each of 30 new layouts,
# and a pix2pix segmenter learns with those pairs at share 0.25 (520 steps, validated every 52), as does
# one without them. Candidates are ranked by the mean over seeds of the validation mIoU averaged over the
# last five evaluations; the test scenes are never read. 62 min on a 2-core CPU that other runs shared
# (load average 5 to 10).
# Usage: experiments/synth_choice.sh [RUN_DIR]      (SEEDS="0 1" by default; reruns skip finished steps)
set -euo pipefail
cd "$(dirname "$0")/.."
R=${1:-runs/synthchoice}
SEEDS=${SEEDS:-"0 1"}
PY=${PYTHON:-.venv/bin/python}
# Generators: name|synth.py train options.
MODELS=(
  "pix2pix|--generator pix2pix"
  "oasis|--generator oasis"
  "oasis+diffaugment|--generator oasis --diffaugment color,translation"
  "oasis+diversity|--generator oasis --diversity 1"
)
# Rendered pair sets for the segmenter: name|generator|synth.py generate options.
ARMS=(
  "pix2pix|pix2pix|"
  "oasis|oasis|"
  "oasis+diffaugment|oasis+diffaugment|"
  "oasis+diversity|oasis+diversity|"
  "oasis, rare boost 0|oasis|--rare-boost 0"
)
slug() { echo "$1" | tr -c 'a-z0-9\n' '_'; }
# A stopped training continues with --resume; a finished one (its last figure written) is skipped.
run() {  # run DONE_FILE OUT COMMAND...
  local done=$1 out=$2; shift 2
  if [ -f "$out/$done" ]; then return; fi
  if [ -f "$out/config.json" ]; then "$@" --out "$out" --resume; else "$@" --out "$out"; fi
}

[ -d "$R/data" ] || $PY resize_to_256.py --demo 100 --size 64 --out "$R/data" --quiet
for S in $SEEDS; do
  D="$R/seed$S"
  mkdir -p "$D"
  [ -f "$D/split.json" ] || $PY -c "
import os, sys
from landaug.config import load_config
from landaug.split import draw_split, write_split
d = load_config('$R/data/images_CGAN/config.json')
split = draw_split(d['train_scenes'], d['test_scenes'], 0.2, $S)
os.makedirs('$D/val_photos', exist_ok=True)
for name in os.listdir('$R/data/images_CGAN/scenes/a'):
    if os.path.splitext(name)[0] in split['val']:
        os.symlink(os.path.abspath(f'$R/data/images_CGAN/scenes/a/{name}'), f'$D/val_photos/{name}')
write_split('$D/split.json', split)"
  COMMON=(--data "$R/data/images_CGAN" --split "$D/split.json" --steps 520 --eval-every 52 --batch 8 --width 0.5
          --seed "$S" --quiet --sample-every 0)
  run losses.png "$D/cgan_baseline" $PY cgan.py train "${COMMON[@]}"
  for m in "${MODELS[@]}"; do
    name=${m%%|*}; opts=${m#*|}; M="$D/synth_$(slug "$name")"
    # shellcheck disable=SC2086
    run training.png "$M" $PY synth.py train --data "$R/data/images_CGAN" --split "$D/split.json" --steps 1200 \
      --batch 8 --width 0.25 --seed "$S" --sample-every 600 --checkpoint-every 100 --quiet $opts
    [ -f "$M/score/score.json" ] || $PY synth.py score --model "$M" --images "$D/val_photos" --n 200 --quiet > /dev/null
  done
  for a in "${ARMS[@]}"; do
    IFS='|' read -r name model opts <<< "$a"
    G="$D/gen_$(slug "$name")"
    [ -f "$G/config.json" ] || rm -rf "$G"    # a stopped generate leaves files a new one must not meet
    # shellcheck disable=SC2086
    [ -f "$G/config.json" ] || $PY synth.py generate --model "$D/synth_$(slug "$model")" --out "$G" --n-layouts 30 \
      --per-layout 2 --seed "$S" --quiet $opts > /dev/null
    run losses.png "$D/cgan_$(slug "$name")" $PY cgan.py train "${COMMON[@]}" --extra "$G" --synthetic-share 0.25
  done
done
$PY experiments/synth_choose.py "$R" "${ARMS[@]}"

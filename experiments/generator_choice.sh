#!/usr/bin/env bash
# The mask-to-photo generator choice (pix2pix or SPADE) on synthetic demo scenes at 64 px, seed 0:
# SWD of rendered photos against the validation photos of the split (never the test photos), and the
# segmenter's validation mIoU with the rendered pairs at share 0.25. 27 min on a 2-core CPU that a SPARCS
# run shared.
# Usage: experiments/generator_choice.sh [RUN_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
R=${1:-runs/gencmp}
PY=${PYTHON:-.venv/bin/python}
[ -d "$R/data" ] || $PY resize_to_256.py --demo 60 --size 64 --out "$R/data" --quiet
[ -f "$R/split.json" ] || $PY -c "
from landaug.config import load_config
from landaug.split import draw_split, write_split
d = load_config('$R/data/images_CGAN/config.json')
write_split('$R/split.json', draw_split(d['train_scenes'], d['test_scenes'], 0.1, 0))"
for g in pix2pix spade; do
  [ -d "$R/synth_$g" ] || $PY synth.py train --data "$R/data/images_CGAN" --out "$R/synth_$g" --split "$R/split.json" \
    --generator $g --steps 1000 --batch 8 --width 0.25 --quiet
  [ -d "$R/gen_$g" ] || $PY synth.py generate --model "$R/synth_$g" --out "$R/gen_$g" --n-layouts 30 --per-layout 2 --quiet
  # no --images: synth.py score compares with the pairs of the split's validation scenes
  $PY synth.py score --model "$R/synth_$g" --n 200 --quiet | tee "$R/score_$g.txt"
done
COMMON=(--data "$R/data/images_CGAN" --split "$R/split.json" --steps 520 --eval-every 52 --batch 8 --width 0.5
        --seed 0 --quiet --sample-every 0)
[ -d "$R/cgan_baseline" ] || $PY cgan.py train "${COMMON[@]}" --out "$R/cgan_baseline"
for g in pix2pix spade; do
  [ -d "$R/cgan_$g" ] || $PY cgan.py train "${COMMON[@]}" --out "$R/cgan_$g" --extra "$R/gen_$g" --synthetic-share 0.25
done

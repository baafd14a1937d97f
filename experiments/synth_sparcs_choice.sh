#!/usr/bin/env bash
# Which mask-to-photo generator feeds the masksynth arms on SPARCS, chosen on validation scenes only: on the
# data and the seed 0 and 1 splits of a finished experiments/segmenter_sweep.sh run, each candidate generator
# (the cpu preset's 1500 steps of batch 8 at width 0.5) learns from the split's training tiles, is scored
# against the split's validation photos (SWD, histogram distance, diversity_same_layout), renders 2 photos
# for each of 100 new layouts, and the sweep's chosen labeller learns with those pairs at share 0.25; the
# sweep's own run of that labeller is the reference without them. Ranked by the mean over the two seeds of
# the validation mIoU averaged over the last five evaluations; the test scenes are never read.
# Usage: experiments/synth_sparcs_choice.sh SWEEP_DIR [RUN_DIR]    (about 1 h on a 2-core CPU; rerun to resume)
set -euo pipefail
cd "$(dirname "$0")/.."
SWEEP=${1:?usage: experiments/synth_sparcs_choice.sh SWEEP_DIR [RUN_DIR]}
R=${2:-$SWEEP/synth}
PY=${PYTHON:-.venv/bin/python}
CHOOSE=(env TF_CPP_MIN_LOG_LEVEL=3 "$PY" experiments/segmenter_choose.py)
GENERATORS=(pix2pix oasis)

# The sweep's chosen labeller: its options (data folder included) and its own candidate folder.
read -ra LABELLER <<< "$("$PY" -c "
import json, sys
sys.path.insert(0, 'experiments')
from segmenter_choose import as_argv
final = list(json.load(open('$SWEEP/chosen.json')).values())[-1]
print(' '.join(as_argv(final['options'])))")"
REFERENCE=$(cd "$SWEEP" && pwd)/$("${CHOOSE[@]}" winner "$SWEEP" D)
DATA=$("$PY" -c "import json; print(list(json.load(open('$SWEEP/chosen.json')).values())[-1]['options']['data'])")

for S in 0 1; do
  D="$R/seed$S"
  mkdir -p "$D"
  [ -e "$D/cgan_baseline" ] || ln -s "$REFERENCE/seed$S" "$D/cgan_baseline"
  for g in "${GENERATORS[@]}"; do
    M="$D/synth_$g"
    if [ ! -f "$M/training.png" ]; then
      resume=(); [ -f "$M/config.json" ] && resume=(--resume)
      $PY synth.py train --data "$DATA" --split "$SWEEP/seed$S/split.json" --generator "$g" --steps 1500 --batch 8 \
        --width 0.5 --seed "$S" --sample-every 750 --checkpoint-every 250 --quiet --out "$M" "${resume[@]}"
    fi
    [ -f "$M/score/score.json" ] || $PY synth.py score --model "$M" --n 200 --quiet > /dev/null
    G="$D/gen_$g"
    [ -f "$G/config.json" ] || { rm -rf "$G"; $PY synth.py generate --model "$M" --out "$G" --n-layouts 100 \
      --per-layout 2 --seed "$S" --quiet > /dev/null; }
    A="$D/cgan_$g"
    "${CHOOSE[@]}" finished "$A" && continue
    resume=(); [ -f "$A/ckpt/checkpoint" ] && resume=(--resume)
    $PY cgan.py train --split "$SWEEP/seed$S/split.json" "${LABELLER[@]}" --batch 8 --size 128 --seed "$S" \
      --sample-every 0 --quiet --extra "$G" --synthetic-share 0.25 --out "$A" "${resume[@]}"
  done
done
$PY experiments/synth_choose.py "$R" "pix2pix|pix2pix|" "oasis|oasis|"

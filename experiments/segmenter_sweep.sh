#!/usr/bin/env bash
# Which labeller to train in every arm: a validation sweep on SPARCS, seeds 0 and 1 (validation scenes only:
# no test scene is read; cgan.py train is called with each seed's split.json, so nothing labels the test).
# Usage: experiments/segmenter_sweep.sh SPARCS_DIR [RUN_DIR]      (RUN_DIR default runs/segsweep)
# Rerun the same line to resume: finished trainings are skipped, a killed one continues from its checkpoint.
# Stages, each starting from the previous stage's winner (RUN_DIR/chosen.json), every candidate 2 seeds:
#   A  labeller, loss, schedule, upsampling at 1280 steps on 128 px native tiles, width 0.5:
#      pix2pix (today's), unet, unet+cosine, unet+ce+dice+cosine, unet+ce+lovasz+cosine; then the best of
#      those with a segmenter's optimiser (Adam 1e-3, beta_1 0.9), then without decoder dropout, then with
#      resize upsampling; then the best so far at width 1.0 (WIDTH1=no skips it)
#   B  context: native tiles, scenes resampled by 0.5 before tiling (stage 1 --tile-scale 0.5), scenes
#      shrunk to 128 px (--mode resize)
#   C  flip TTA in validation (and so in the test) on or off
#   D  length: 1280, 2560 and 5120 steps (validated 10 times each), a validation curve (STEPS4X=no skips
#      5120: 4x the steps of the arms' budget is more than the budget on a 2-core CPU)
# A candidate wins only if its training fits the per-arm budget: BUDGET minutes (default 7) of training
# and validation time on this machine alone, slowest seed (its CPU time over the cores, so a shared machine does
# not inflate it).
# Score: the mean validation mIoU of the last five evaluations, averaged over the two seeds; the table at
# the end (experiments/segmenter_choose.py table) has the per-seed columns.
# Duration, estimated (not measured): a pix2pix arm of the cpu preset takes 3.1-3.5 min on a quiet 2-core
# CPU (docs/RESULTS.md), of which ~1 min is start-up and 10 validations; per training step, in CPU time
# (bench.py --size 128 --width 0.5 --batch 8 --ablation labeller, docs/PERFORMANCE.md), unet costs 0.67 of
# pix2pix, unet+dice 0.73, unet+lovasz 1.0, unet+resize 1.1, unet at width 1.0 2.4 (and ~4x the validation);
# flip TTA makes validation 4x. So A ~55 min (14 trainings, 2.5-8.5 min each), B ~20 min (3 stage-1 runs,
# 4 trainings), C ~12 min, D ~40 min (2x and 4x the steps): about 2 h 10 min in all, longer on a shared
# machine.
set -euo pipefail
cd "$(dirname "$0")/.."
SPARCS=${1:?usage: experiments/segmenter_sweep.sh SPARCS_DIR [RUN_DIR]}
R=${2:-runs/segsweep}
PY=${PYTHON:-.venv/bin/python}
CHOOSE=(env TF_CPP_MIN_LOG_LEVEL=3 "$PY" experiments/segmenter_choose.py)
BUDGET=${BUDGET:-7}
WIDTH1=${WIDTH1:-yes}
STEPS4X=${STEPS4X:-yes}
STEPS=${STEPS:-1280}      # the arms' length; stage D tries 2x and 4x; every run validates 10 times

prepare() {  # NAME STAGE-1 OPTIONS...: one data variant, prepared once (a .done marker when complete)
  local name=$1; shift
  [ -f "$R/$name/.done" ] && return 0
  rm -rf "$R/$name"
  $PY resize_to_256.py --sparcs "$SPARCS" --test-list docs/sparcs_test_list.txt --size 128 --out "$R/$name" \
    --quiet "$@"
  touch "$R/$name/.done"
}

train() {  # CANDIDATE OPTIONS...: one cgan.py train per seed; later options win over earlier ones
  local name=$1; shift
  for seed in 0 1; do
    local out="$R/$name/seed$seed"
    "${CHOOSE[@]}" finished "$out" && continue
    local resume=()
    [ -f "$out/ckpt/checkpoint" ] && resume=(--resume)
    $PY cgan.py train --data "$R/tile1/images_CGAN" --split "$R/seed$seed/split.json" --steps "$STEPS" \
      --eval-every $((STEPS / 10)) --batch 8 --size 128 --width 0.5 --seed "$seed" --sample-every 0 --quiet \
      --out "$out" "$@" "${resume[@]}"
  done
}

pick() {  # STAGE CANDIDATES... --budget MIN: the winner's options into WIN (and RUN_DIR/chosen.json)
  local line
  line=$("${CHOOSE[@]}" pick "$R" "$@")
  read -ra WIN <<< "$line"
}

winner() { "${CHOOSE[@]}" winner "$R" "$1"; }

prepare tile1 --mode tile
"${CHOOSE[@]}" split "$R/tile1" "$R"

# A: labeller, loss, schedule, upsampling
train A/pix2pix --labeller pix2pix
train A/unet --labeller unet
train A/unet_cosine --labeller unet --lr-schedule cosine
train A/unet_dice_cosine --labeller unet --loss ce+dice --lr-schedule cosine
train A/unet_lovasz_cosine --labeller unet --loss ce+lovasz --lr-schedule cosine
pick A1 A/pix2pix A/unet A/unet_cosine A/unet_dice_cosine A/unet_lovasz_cosine --budget "$BUDGET"
# the optimiser of a segmenter rather than of a GAN (Adam 1e-3, beta_1 0.9), then no decoder dropout
train A/adam "${WIN[@]}" --lr 1e-3 --beta1 0.9
pick A1b "$(winner A1)" A/adam --budget "$BUDGET"
train A/nodropout "${WIN[@]}" --dropout 0
pick A1c "$(winner A1b)" A/nodropout --budget "$BUDGET"
train A/resize "${WIN[@]}" --upsample resize
pick A2 "$(winner A1c)" A/resize --budget "$BUDGET"
if [ "$WIDTH1" = yes ]; then
  train A/width1 "${WIN[@]}" --width 1.0
  pick A3 "$(winner A2)" A/width1 --budget "$BUDGET"
fi

# B: how much context a window sees
prepare tile05 --mode tile --tile-scale 0.5
prepare resize128 --mode resize
"${CHOOSE[@]}" split "$R/tile05" "$R"
"${CHOOSE[@]}" split "$R/resize128" "$R"
train B/tile05 "${WIN[@]}" --data "$R/tile05/images_CGAN"
train B/resize128 "${WIN[@]}" --data "$R/resize128/images_CGAN"
pick B "$(winner A)" B/tile05 B/resize128 --budget "$BUDGET"

# C: flip TTA in validation (and so in the test)
train C/tta "${WIN[@]}" --tta flips
pick C "$(winner B)" C/tta --budget "$BUDGET"

# D: length, as a validation curve
train D/steps2x "${WIN[@]}" --steps $((2 * STEPS)) --eval-every $((2 * STEPS / 10))
if [ "$STEPS4X" = yes ]; then
  train D/steps4x "${WIN[@]}" --steps $((4 * STEPS)) --eval-every $((4 * STEPS / 10))
  pick D "$(winner C)" D/steps2x D/steps4x --budget "$BUDGET"
else
  pick D "$(winner C)" D/steps2x --budget "$BUDGET"
fi
"${CHOOSE[@]}" table "$R" | tee "$R/table.md"

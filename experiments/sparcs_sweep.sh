#!/usr/bin/env bash
# The validation sweep that chose the pipeline's defaults for --synthetic-share and the copy-paste options,
# on SPARCS seed 0's own split (validation scenes only; the test scenes are never read).
# Usage: experiments/sparcs_sweep.sh SPARCS_DIR [RUN_DIR]    (about 1 h 20 min on a 2-core CPU)
set -euo pipefail
cd "$(dirname "$0")/.."
SPARCS=${1:?usage: experiments/sparcs_sweep.sh SPARCS_DIR [RUN_DIR]}
R=${2:-runs/sweep}
PY=${PYTHON:-.venv/bin/python}
# the cpu preset's labeller when this sweep was run: the paper's pix2pix on native tiles
read -ra PAPER <<< "$("$PY" -c 'from landaug.pipeline.presets import PAPER_OPTIONS; print(PAPER_OPTIONS)')"
# The four arms of one seed at share 0.5; --resume continues a run that stopped.
if [ -f "$R/config.json" ]; then
  $PY pipeline.py --resume --out "$R"
else
  $PY pipeline.py --sparcs "$SPARCS" --test-list docs/sparcs_test_list.txt --preset cpu \
    --arms baseline,gan,paired,masksynth --synthetic-share 0.5 --seeds 1 --out "$R" "${PAPER[@]}"
fi
# The same pix2pix training as the arms above, on the same split, with one option changed at a time.
COMMON=(--data "$R/data/images_CGAN" --split "$R/seed0/split.json" --steps 1280 --eval-every 128 --batch 8
        --size 128 --width 0.5 --seed 0 --quiet --sample-every 0)
train() { local out=$1; shift; [ -f "$out/best/checkpoint" ] || $PY cgan.py train "${COMMON[@]}" --out "$out" "$@"; }
for kind in gan:predict_CGAN paired:generated_paired masksynth:generated_synth; do
  name=${kind%%:*}; dir=${kind##*:}
  train "$R/sw/${name}_s025" --extra "$R/seed0/$dir" --synthetic-share 0.25
  train "$R/sw/${name}_append" --extra "$R/seed0/$dir"
done
for p in 0.25 0.5 1.0; do
  train "$R/sw/cp_p${p}_n2_r1" --copypaste-p "$p" --copypaste-n 2 --copypaste-rarity 1
done
train "$R/sw/cp_p0.5_n4_r1" --copypaste-p 0.5 --copypaste-n 4 --copypaste-rarity 1
train "$R/sw/cp_p0.5_n2_r0.5" --copypaste-p 0.5 --copypaste-n 2 --copypaste-rarity 0.5
$PY experiments/sweep_choose.py "$R"

#!/usr/bin/env bash
# The SPARCS table of docs/RESULTS.md: every arm, 3 seeds, native-resolution tiles and whole-scene test
# (about 2 h 15 min on a 2-core CPU), then the same protocol on scenes shrunk to 128 px (about 20 min).
# Usage: experiments/sparcs_table.sh SPARCS_DIR [RUNS_DIR]; rerun the same line to resume.
set -euo pipefail
cd "$(dirname "$0")/.."
SPARCS=${1:?usage: experiments/sparcs_table.sh SPARCS_DIR [RUNS_DIR]}
RUNS=${2:-runs}
PY=${PYTHON:-.venv/bin/python}
# the labeller these tables were run with (the cpu preset's before the segmenter sweep), on native tiles
read -ra PAPER <<< "$("$PY" -c 'from landaug.pipeline.presets import PAPER_OPTIONS; print(PAPER_OPTIONS)')"
run() {
  local out=$1; shift
  if [ -f "$out/config.json" ]; then $PY pipeline.py --resume --out "$out"; else $PY pipeline.py "$@" --out "$out"; fi
}
run "$RUNS/sparcs-full" --sparcs "$SPARCS" --test-list docs/sparcs_test_list.txt --preset cpu --seeds 3 \
  --arms baseline,classic,classic+weights,copypaste,classic+copypaste,gan,paired,masksynth,classic+masksynth \
  --synthetic-share 0.25 --copypaste-p 0.25 --copypaste-n 2 --copypaste-rarity 1 "${PAPER[@]}"
run "$RUNS/sparcs-resize128" --sparcs "$SPARCS" --test-list docs/sparcs_test_list.txt --preset cpu --seeds 3 \
  --data-mode resize --arms baseline,classic "${PAPER[@]}"

#!/usr/bin/env bash
# The baseline on the SPARCS test scenes: the cpu preset's labeller (chosen by experiments/segmenter_sweep.sh
# on validation scenes, 2560 steps) against the paper's pix2pix labeller (the earlier tables' 1280 steps), 3
# seeds each, the same splits; then one report with both and the per-class table (docs/RESULTS.md, "A segmenter
# worth augmenting"). About 17.5 min a run of 3 seeds on a 2-core CPU (both runs, docs/RESULTS.md).
# Usage: experiments/segmenter_baseline.sh SPARCS_DIR [RUNS_DIR]; rerun the same line to resume.
set -euo pipefail
cd "$(dirname "$0")/.."
SPARCS=${1:?usage: experiments/segmenter_baseline.sh SPARCS_DIR [RUNS_DIR]}
RUNS=${2:-runs}
PY=${PYTHON:-.venv/bin/python}
run() {
  local out=$1; shift
  if [ -f "$out/summary.md" ]; then return 0; fi
  if [ -f "$out/config.json" ]; then $PY pipeline.py --resume --out "$out"; else $PY pipeline.py "$@" --out "$out"; fi
}
COMMON=(--sparcs "$SPARCS" --test-list docs/sparcs_test_list.txt --preset cpu --seeds 3 --arms baseline)
run "$RUNS/segmenter-cpu" "${COMMON[@]}"
read -ra PAPER <<< "$("$PY" -c 'from landaug.pipeline.presets import PAPER_OPTIONS; print(PAPER_OPTIONS)')"
run "$RUNS/segmenter-pix2pix" "${COMMON[@]}" "${PAPER[@]}"
# one report, the paper's labeller the reference; the truth of both runs is the same stage-1 output
$PY eval.py --truth "$RUNS/segmenter-cpu/data/images_CGAN/test/b" \
  --pred "pix2pix=$RUNS/segmenter-pix2pix/seed*/baseline/Pred_test" \
  --pred "cpu=$RUNS/segmenter-cpu/seed*/baseline/Pred_test" \
  --images "$RUNS/segmenter-cpu/data/images_CGAN/test/a" --scenes 0 --out "$RUNS/segmenter-report" --quiet
cat "$RUNS/segmenter-report/report.md"

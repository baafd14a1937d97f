#!/usr/bin/env bash
# The main SPARCS table of docs/RESULTS.md: all 72 scenes in 4 folds (every scene a test scene once per
# seed), five arms at the full label budget with 2 seeds, then budgets of 6, 12 and 24 training scenes with
# 1 seed and three arms (budget "all" taken from the first run), on the Dask executor with 2 workers.
# Usage: experiments/sparcs_kfold.sh SPARCS_DIR [RUNS_DIR]; rerun the same line to resume (finished cells are
# skipped). WORKERS=1 (or EXECUTOR=serial) for a machine with fewer cores.
set -euo pipefail
cd "$(dirname "$0")/.."
SPARCS=${1:?usage: experiments/sparcs_kfold.sh SPARCS_DIR [RUNS_DIR]}
RUNS=${2:-runs}
PY=${PYTHON:-.venv/bin/python}
EXECUTOR=${EXECUTOR:-dask}
WORKERS=${WORKERS:-2}
GRID=(--executor "$EXECUTOR")
[ "$EXECUTOR" = dask ] && GRID+=(--workers "$WORKERS")
run() {
  local out=$1; shift
  if [ -f "$out/config.json" ]; then $PY pipeline.py --resume --out "$out" "${GRID[@]}"; else $PY pipeline.py "$@" --out "$out"; fi
}
run "$RUNS/sparcs-kfold" --sparcs "$SPARCS" --folds 4 --preset cpu --seeds 2 \
  --arms baseline,classic,copypaste,masksynth,classic+masksynth "${GRID[@]}"
run "$RUNS/sparcs-budgets" --sparcs "$SPARCS" --folds 4 --preset cpu --seeds 1 \
  --arms baseline,classic,masksynth --train-scenes 6,12,24 --full-budget-from "$RUNS/sparcs-kfold" "${GRID[@]}"

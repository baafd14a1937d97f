#!/usr/bin/env bash
# The report of a K-fold run over the seeds it has finished so far: each arm's predictions of every fold of
# those seeds pooled (hard links, every scene once per seed), scored by eval.py against baseline and classic.
# The run's own report (eval_report/) needs every seed; this one answers while the later seeds still train.
# Usage: experiments/kfold_seed_report.sh RUN_DIR SEEDS OUT_DIR, e.g. runs/sparcs-kfold 0 runs/kfold-seed0
# (SEEDS a comma list); the run's arms, folds and truth are read from the run folder.
set -euo pipefail
cd "$(dirname "$0")/.."
RUN=${1:?usage: experiments/kfold_seed_report.sh RUN_DIR SEEDS OUT_DIR}
SEEDS=${2:?usage: experiments/kfold_seed_report.sh RUN_DIR SEEDS OUT_DIR}
OUT=${3:?usage: experiments/kfold_seed_report.sh RUN_DIR SEEDS OUT_DIR}
PY=${PYTHON:-.venv/bin/python}
read -r FOLDS ARMS <<< "$("$PY" -c 'import json, sys
c = json.load(open(sys.argv[1]))["config"]
print(c["folds"], ",".join(c["arms"]))' "$RUN/config.json")"
[ "$FOLDS" != None ] || { echo "kfold_seed_report.sh: $RUN is not a K-fold run (no --folds)" >&2; exit 2; }
[ ! -e "$OUT" ] || { echo "kfold_seed_report.sh: $OUT exists: choose another OUT_DIR" >&2; exit 2; }
# every fold's predictions of a seed in one folder; a missing fold or a scene predicted twice is refused
"$PY" - "$RUN" "$SEEDS" "$OUT" <<'PY' || { rm -rf "$OUT"; exit 2; }
import json, os, sys
from pathlib import Path
from landaug.grid import marker_path
from landaug.imgio import list_images

run, seeds, out = Path(sys.argv[1]), sys.argv[2].split(","), Path(sys.argv[3])
cfg = json.loads((run / "config.json").read_text())["config"]
for arm in cfg["arms"]:
    for seed in seeds:
        dest = out / "pooled" / f"seed{seed}" / arm
        dest.mkdir(parents=True)
        for fold in range(cfg["folds"]):
            src = run / f"fold{fold}" / f"seed{seed}" / arm / "Pred_test"
            if not marker_path(run, f"fold{fold}/seed{seed}/{arm}").is_file():
                sys.exit(f"kfold_seed_report.sh: {run}: fold {fold} of seed {seed} has not finished {arm}")
            for p in list_images(src, "prediction folder"):
                if (dest / p.name).exists():
                    sys.exit(f"kfold_seed_report.sh: {p.name} was predicted by two folds of seed {seed} ({arm})")
                os.link(p, dest / p.name)
PY
PRED=()
IFS=, read -ra arms <<< "$ARMS"
for arm in "${arms[@]}"; do PRED+=(--pred "$arm=$OUT/pooled/seed*/$arm"); done
REFS=(--reference baseline)
[[ ",$ARMS," == *,classic,* ]] && REFS+=(--reference classic)
$PY eval.py --truth "$RUN/data/images_CGAN/scenes/b" --images "$RUN/data/images_CGAN/scenes/a" "${PRED[@]}" \
  "${REFS[@]}" --scenes 0 --out "$OUT/eval_report" --quiet
echo "report: $OUT/eval_report/report.md"

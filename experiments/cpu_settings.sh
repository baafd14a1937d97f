#!/usr/bin/env bash
# Which process-wide settings make training faster on a CPU without AVX-512, at the cpu preset's size (128 px,
# width 0.5, batch 8), pix2pix and unet, under the AVX2 emulation of experiments/cpu_timings.sh (oneDNN, XLA
# and NumPy capped at AVX2, float32). Settings fixed when TensorFlow starts cannot take turns inside one
# process, so each is a bench.py process of its own, the settings alternating in ROUNDS rounds (the order
# rotating), and each process's median step is compared with the default's of the same round: wall time and
# the process's CPU time per step, which the other jobs of a shared machine disturb far less. XLA can take
# turns inside one process: `bench.py --ablation xla` (training step and forward pass).
# Usage: experiments/cpu_settings.sh [OUT_DIR] [ROUNDS]   (default /tmp/landaug_cpu_settings, 3 rounds)
# About 25 minutes on 2 quiet cores (3 rounds x 4 settings x 2 labellers of ~40 s, and two XLA ablations).
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-/tmp/landaug_cpu_settings}
ROUNDS=${2:-3}
PY=${PYTHON:-.venv/bin/python}
mkdir -p "$OUT"
AVX2_ENV=(ONEDNN_MAX_CPU_ISA=AVX2 XLA_FLAGS=--xla_cpu_max_isa=AVX2 "NPY_DISABLE_CPU_FEATURES=X86_V4 AVX512_ICL AVX512_SPR"
          OPENBLAS_CORETYPE=Haswell LANDAUG_PRECISION=float32)
SETTINGS=(default TF_ENABLE_ONEDNN_OPTS=0 TF_NUM_INTEROP_THREADS=1 TF_NUM_INTRAOP_THREADS=1)
BENCH=(bench.py --size 128 --width 0.5 --batch 8 --steps 12 --warmup 3 --peak-size 1024 --json)
lscpu > "$OUT/lscpu.txt"

for labeller in pix2pix unet; do
  env "${AVX2_ENV[@]}" $PY bench.py --size 128 --width 0.5 --batch 8 --labeller "$labeller" --ablation xla --steps 12 \
    --warmup 3 --json > "$OUT/xla_$labeller.json"
  for round in $(seq 1 "$ROUNDS"); do
    n=${#SETTINGS[@]}
    for i in $(seq 0 $((n - 1))); do
      setting=${SETTINGS[$(((i + round) % n))]}
      extra=()
      [ "$setting" != default ] && extra=("$setting")
      echo "[$(date +%T)] $labeller round $round: $setting (load $(cut -d' ' -f1 /proc/loadavg))" >&2
      env "${AVX2_ENV[@]}" "${extra[@]}" $PY "${BENCH[@]}" --labeller "$labeller" \
        > "$OUT/${labeller}_r${round}_${setting//[=_]/-}.json"
    done
  done
done

$PY - "$OUT" "$ROUNDS" "${SETTINGS[@]}" <<'EOF' | tee "$OUT/summary.md"
import json, statistics, sys
from pathlib import Path

out, rounds, settings = Path(sys.argv[1]), int(sys.argv[2]), sys.argv[3:]
name = lambda s: s.replace("=", "-").replace("_", "-")
print("| labeller | setting | images/s (median of rounds) | speed vs default, wall: per round | CPU s per step | "
      "speed vs default, CPU: per round | load |")
print("|---|---|---|---|---|---|---|")
for labeller in ("pix2pix", "unet"):
    runs = {s: [json.loads((out / f"{labeller}_r{r}_{name(s)}.json").read_text()) for r in range(1, rounds + 1)]
            for s in settings}
    base = runs["default"]
    for s in settings:
        wall = [b["step_seconds"] / x["step_seconds"] for b, x in zip(base, runs[s])]
        cpu = [b["cpu_seconds_per_step"] / x["cpu_seconds_per_step"] for b, x in zip(base, runs[s])]
        rate = statistics.median(x["images_per_second"] for x in runs[s])
        cpu_step = statistics.median(x["cpu_seconds_per_step"] for x in runs[s])
        listed = lambda values: ", ".join("%.2f" % v for v in values)
        loads = ", ".join("%.1f" % x["load_average_before"] for x in runs[s])
        print(f"| {labeller} | {s} | {rate:.2f} | {listed(wall)} | {cpu_step:.3f} | {listed(cpu)} | {loads} |")
for labeller in ("pix2pix", "unet"):
    r = json.loads((out / f"xla_{labeller}.json").read_text())
    x = r["variants"]["xla"]
    print(f"{labeller} with XLA ({r['precision']}): training {x['speed_vs_graph']:.2f}x the graph's speed "
          f"({x['cpu_speed_vs_graph']:.2f}x in CPU time), forward pass {x['inference_speed_vs_graph']:.2f}x "
          f"({x['inference_cpu_speed_vs_graph']:.2f}x in CPU time); load {r['load_average_before']:.1f} -> "
          f"{r['load_average_after']:.1f}")
EOF

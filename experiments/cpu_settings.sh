#!/usr/bin/env bash
# How fast training and labelling run on a CPU without AVX-512 against this one, and which process-wide
# settings help there, at the cpu preset's size (128 px, width 0.5, batch 8; pix2pix and unet; a 1000 x 1000
# scene through the 128 px labeller). "avx2" is the emulation of experiments/cpu_timings.sh (oneDNN, XLA and
# NumPy capped at AVX2, float32); "native" is this CPU as --precision auto uses it; the others are avx2 plus
# one setting. Settings fixed when TensorFlow starts cannot take turns inside one process, so each is a
# bench.py process of its own, the settings alternating in ROUNDS rounds (the order rotating), and each
# process's median step is compared with the avx2 process of the same round: in wall time and in the
# process's CPU time per step, which the other jobs of a shared machine disturb far less. XLA can take turns
# inside one process: `bench.py --ablation xla` (training step and forward pass) under the emulation.
# Usage: experiments/cpu_settings.sh [OUT_DIR] [ROUNDS]   (default /tmp/landaug_cpu_settings, 3 rounds);
# SETTINGS="avx2 native ..." in the environment times those settings only (avx2 first: the reference).
# About 40 minutes on 2 quiet cores (3 rounds x 5 settings x 2 labellers of ~40 s, 6 scene runs, two XLA
# ablations).
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-/tmp/landaug_cpu_settings}
ROUNDS=${2:-3}
PY=${PYTHON:-.venv/bin/python}
mkdir -p "$OUT"
AVX2_ENV=(ONEDNN_MAX_CPU_ISA=AVX2 XLA_FLAGS=--xla_cpu_max_isa=AVX2 "NPY_DISABLE_CPU_FEATURES=X86_V4 AVX512_ICL AVX512_SPR"
          OPENBLAS_CORETYPE=Haswell LANDAUG_PRECISION=float32)
read -r -a SETTINGS <<< "${SETTINGS:-avx2 native TF_ENABLE_ONEDNN_OPTS=0 TF_NUM_INTEROP_THREADS=1 TF_NUM_INTRAOP_THREADS=1}"
TRAIN=(bench.py --size 128 --width 0.5 --batch 8 --steps 12 --warmup 3 --peak-size 1024 --json)
SCENE=(bench.py --scene 1000 --size 128 --width 0.5 --steps 5 --warmup 2 --json)
lscpu > "$OUT/lscpu.txt"

with() {  # with SETTING COMMAND...: the command under the setting
  local setting=$1; shift
  case $setting in
    native) "$@" ;;
    avx2) env "${AVX2_ENV[@]}" "$@" ;;
    *) env "${AVX2_ENV[@]}" "$setting" "$@" ;;
  esac
}

alternate() {  # alternate NAME SETTING... -- COMMAND...: ROUNDS rounds of every setting, the order rotating
  local name=$1; shift
  local settings=()
  while [ "$1" != "--" ]; do settings+=("$1"); shift; done
  shift
  local n=${#settings[@]}
  for round in $(seq 1 "$ROUNDS"); do
    for i in $(seq 0 $((n - 1))); do
      local setting=${settings[$(((i + round) % n))]}
      echo "[$(date +%T)] $name round $round: $setting (load $(cut -d' ' -f1 /proc/loadavg))" >&2
      with "$setting" $PY "$@" > "$OUT/${name}_r${round}_${setting//[=_]/-}.json"
    done
  done
}

for labeller in pix2pix unet; do
  with avx2 $PY "${TRAIN[@]}" --labeller "$labeller" --ablation xla > "$OUT/xla_$labeller.json"
  alternate "$labeller" "${SETTINGS[@]}" -- "${TRAIN[@]}" --labeller "$labeller"
done
alternate scene avx2 native -- "${SCENE[@]}"

$PY - "$OUT" "$ROUNDS" "${SETTINGS[@]}" <<'EOF' | tee "$OUT/summary.md"
import json, statistics, sys
from pathlib import Path

out, rounds, settings = Path(sys.argv[1]), int(sys.argv[2]), sys.argv[3:]
name = lambda s: s.replace("=", "-").replace("_", "-")
listed = lambda values: ", ".join("%.2f" % v for v in values)


def runs(kind, setting):
    return [json.loads((out / f"{kind}_r{r}_{name(setting)}.json").read_text()) for r in range(1, rounds + 1)]


print(f"Machine: {json.loads((out / 'xla_pix2pix.json').read_text())['machine']['cpu']}")
print("| model | setting | precision | images/s (median of rounds) | speed vs avx2, wall: per round | "
      "CPU s per step | speed vs avx2, CPU: per round | load |")
print("|---|---|---|---|---|---|---|---|")
for labeller in ("pix2pix", "unet"):
    base = runs(labeller, "avx2")
    for s in settings:
        these = runs(labeller, s)
        wall = [b["step_seconds"] / x["step_seconds"] for b, x in zip(base, these)]
        cpu = [b["cpu_seconds_per_step"] / x["cpu_seconds_per_step"] for b, x in zip(base, these)]
        rate = statistics.median(x["images_per_second"] for x in these)
        cpu_step = statistics.median(x["cpu_seconds_per_step"] for x in these)
        loads = ", ".join("%.1f" % x["load_average_before"] for x in these)
        print(f"| {labeller} | {s} | {these[0]['precision']} | {rate:.2f} | {listed(wall)} | {cpu_step:.3f} | "
              f"{listed(cpu)} | {loads} |")
base, native = runs("scene", "avx2"), runs("scene", "native")
for s, these in (("avx2", base), ("native", native)):
    print(f"1000 x 1000 scene, {s} ({these[0]['precision']}): {statistics.median(x['seconds_per_scene'] for x in these):.2f} s, "
          f"{statistics.median(x['cpu_seconds_per_scene'] for x in these):.2f} CPU s; speed vs avx2, wall "
          f"{listed(b['seconds_per_scene'] / x['seconds_per_scene'] for b, x in zip(base, these))}, CPU "
          f"{listed(b['cpu_seconds_per_scene'] / x['cpu_seconds_per_scene'] for b, x in zip(base, these))}")
for labeller in ("pix2pix", "unet"):
    r = json.loads((out / f"xla_{labeller}.json").read_text())
    x = r["variants"]["xla"]
    print(f"{labeller} with XLA under avx2 ({r['precision']}): training {x['speed_vs_graph']:.2f}x the speed without "
          f"({x['cpu_speed_vs_graph']:.2f}x in CPU time), forward pass {x['inference_speed_vs_graph']:.2f}x "
          f"({x['inference_cpu_speed_vs_graph']:.2f}x in CPU time); load {r['load_average_before']:.1f} -> "
          f"{r['load_average_after']:.1f}")
EOF

#!/usr/bin/env bash
# The wall times README and docs/PERFORMANCE.md give for `make demo`, `make test` and the training and
# inference speed at the cpu preset's size, on this machine natively and under the AVX2 emulation: oneDNN,
# XLA and NumPy limited to AVX2 and --precision auto resolving to float32 (what the same binary runs on a CPU
# without AVX-512; an emulation: the clock, caches and memory of this machine stay). Each mode works in a
# fresh clone of this repository's HEAD in a temporary folder: `make setup` (the virtualenv from the
# requirements) timed on its own, then `make demo` and `make test` under /usr/bin/time -v, then bench.py.
# Usage: experiments/cpu_timings.sh [OUT_DIR] [MODES]     (default /tmp/landaug_cpu_timings, "native avx2")
# Run it on a quiet machine (the 1-minute load average is recorded before every step, and every figure
# is a wall time): about 45 minutes on 2 cores with AVX-512, about an hour of it under the emulation.
# Prints a summary table at the end (also OUT_DIR/summary.md); the logs stay in OUT_DIR/<mode>/.
set -euo pipefail
REPO=$(cd "$(dirname "$0")/.." && pwd)
OUT=$(mkdir -p "${1:-/tmp/landaug_cpu_timings}" && cd "${1:-/tmp/landaug_cpu_timings}" && pwd)
MODES=${2:-native avx2}
PYTHON=${PYTHON:-python3.11}
WORK=$(mktemp -d /tmp/landaug_clone.XXXXXX)
trap 'rm -rf "$WORK"' EXIT

# The AVX2 emulation: every library that picks its instructions at run time, capped at AVX2 (TensorFlow's
# own kernels are compiled for AVX and do not change), and auto precision float32 (LANDAUG_PRECISION).
AVX2_ENV=(ONEDNN_MAX_CPU_ISA=AVX2 XLA_FLAGS=--xla_cpu_max_isa=AVX2 "NPY_DISABLE_CPU_FEATURES=X86_V4 AVX512_ICL AVX512_SPR"
          OPENBLAS_CORETYPE=Haswell LANDAUG_PRECISION=float32)

lscpu > "$OUT/lscpu.txt"
load() { cut -d' ' -f1 /proc/loadavg; }

timed() {  # timed NAME DIR ENV... -- COMMAND...: /usr/bin/time -v of COMMAND in DIR, output in $OUT/$mode/NAME.*
  local name=$1 dir=$2; shift 2
  local envs=()
  while [ "$1" != "--" ]; do envs+=("$1"); shift; done
  shift
  echo "load $(load) before $name" >> "$OUT/$mode/loads.txt"
  echo "[$(date +%T)] $mode: $name" >&2
  (cd "$dir" && env "${envs[@]}" /usr/bin/time -v -o "$OUT/$mode/$name.time" "$@" > "$OUT/$mode/$name.log" 2>&1) \
    || echo "$name exited with $?" >> "$OUT/$mode/failures.txt"
}

for mode in $MODES; do
  mkdir -p "$OUT/$mode"
  : > "$OUT/$mode/loads.txt"
  envs=()
  [ "$mode" = avx2 ] && envs=("${AVX2_ENV[@]}")
  clone="$WORK/$mode"
  git clone --quiet "$REPO" "$clone"
  timed setup "$clone" "${envs[@]}" PYTHON="$PYTHON" -- make setup
  # Which kernels oneDNN runs here: under the emulation every one must be an AVX2 (or ISA-free) kernel.
  (cd "$clone" && env "${envs[@]}" ONEDNN_VERBOSE=1 .venv/bin/python bench.py --size 32 --width 0.25 --batch 2 \
      --steps 1 --warmup 1 --peak-size 64 --json 2>&1 | grep '^onednn_verbose' \
      | awk -F, '$3 == "info" && $5 ~ /^isa:/ {print $5} $3 == "primitive" && $4 == "exec" {print $6 "," $7}' \
      | sort | uniq -c | sort -rn > "$OUT/$mode/onednn_kernels.txt") || true
  if [ "$mode" = avx2 ] && grep -q avx512 "$OUT/$mode/onednn_kernels.txt"; then
    echo "oneDNN ran AVX-512 kernels under ONEDNN_MAX_CPU_ISA=AVX2: see $OUT/$mode/onednn_kernels.txt" >&2
    exit 1
  fi
  timed demo "$clone" "${envs[@]}" -- make demo
  timed test "$clone" "${envs[@]}" -- make test
  for labeller in pix2pix unet; do
    timed "bench_$labeller" "$clone" "${envs[@]}" -- .venv/bin/python bench.py --size 128 --width 0.5 --batch 8 \
      --labeller "$labeller" --steps 20 --warmup 3 --json
  done
  timed bench_scene "$clone" "${envs[@]}" -- .venv/bin/python bench.py --scene 1000 --size 128 --width 0.5 \
    --steps 5 --warmup 2 --json
done

"$PYTHON" - "$OUT" $MODES <<'EOF' | tee "$OUT/summary.md"
import json, re, sys
from pathlib import Path

out, modes = Path(sys.argv[1]), sys.argv[2:]


def gnu_time(path):
    """(wall s, user + sys s, peak resident MB) from /usr/bin/time -v."""
    text = path.read_text() if path.is_file() else ""
    field = lambda name: re.search(rf"{re.escape(name)}: (.*)", text).group(1).strip() if name in text else None
    wall = field("Elapsed (wall clock) time (h:mm:ss or m:ss)")
    if wall is None:
        return None
    seconds = sum(float(p) * 60 ** i for i, p in enumerate(reversed(wall.split(":"))))
    return seconds, float(field("User time (seconds)")) + float(field("System time (seconds)")), \
        int(field("Maximum resident set size (kbytes)")) / 1024


def mmss(s):
    return f"{int(s // 60)} min {s % 60:04.1f} s"


def bench(mode, name):
    log = out / mode / f"{name}.log"
    lines = [l for l in log.read_text().splitlines() if l.startswith("{")] if log.is_file() else []
    return json.loads(lines[-1]) if lines else None


loads = {m: (out / m / "loads.txt").read_text().split("\n") if (out / m / "loads.txt").is_file() else [] for m in modes}
print(f"Machine: {next((l.split(':', 1)[1].strip() for l in (out / 'lscpu.txt').read_text().splitlines() if l.startswith('Model name')), '?')}")
print("| step | " + " | ".join(modes) + " |")
print("|---|" + "---|" * len(modes))
for name, what in (("setup", "`make setup` (virtualenv)"), ("demo", "`make demo`"), ("test", "`make test`")):
    cells = []
    for m in modes:
        t = gnu_time(out / m / f"{name}.time")
        cells.append("n/a" if t is None else f"{mmss(t[0])} (CPU {t[1]:.0f} s, {t[2]:.0f} MB)")
    print(f"| {what} | " + " | ".join(cells) + " |")
for name, key, what in (("bench_pix2pix", "images_per_second", "pix2pix training, 128 px, width 0.5, batch 8: images/s"),
                        ("bench_unet", "images_per_second", "unet training, same size: images/s"),
                        ("bench_scene", "seconds_per_scene", "labelling a 1000 x 1000 scene: s")):
    cells = []
    for m in modes:
        r = bench(m, name)
        cells.append("n/a" if r is None else f"{r[key]:.2f} ({r.get('precision')})")
    print(f"| {what} | " + " | ".join(cells) + " |")
for m in modes:
    print(f"{m}: load averages before each step: {', '.join(l.split()[1] for l in loads[m] if l)}")
EOF

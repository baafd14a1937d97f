"""CPU seconds of a pipeline run's trainings, for sizing a preset on a shared machine.

The run estimate of landaug/pipeline/estimate.py, with every timing taken in this process's CPU time
(all its threads) instead of wall time: other jobs on the machine change it far less. Every distinct model
of all the variants is timed once, in this one process, so the variants compare within one process; the
CPU seconds over 2 give a lower bound of the wall time on 2 quiet cores. Stage 1, the GAN scores and
sample grids, checkpoints, the evaluation and the estimate's own timing are not counted.

Usage: python experiments/demo_sizing.py '{"now": [], "unet": ["--labeller", "unet"]}' [pipeline options...]
(each variant: pipeline options added to `--demo` and the options after the JSON). For the AVX2 float32
emulation, run it under the environment of experiments/cpu_timings.sh.
"""

from __future__ import annotations

import dataclasses
import json
import sys
import tempfile
import time
import types
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from landaug.pipeline import estimate as E  # noqa: E402
from landaug.pipeline.cli import build_parser, config_from_args  # noqa: E402
from landaug.pipeline.options import validate  # noqa: E402


def main(variants: dict, common: list[str]) -> None:
    E.time = types.SimpleNamespace(perf_counter=time.process_time)
    out = str(Path(tempfile.mkdtemp(prefix="landaug_sizing_")) / "run")
    runs = {}
    for name, extra in variants.items():
        argv = ["--demo", "--out", out, *common, *extra]
        cfg = config_from_args(build_parser().parse_args(argv), argv)
        runs[name] = (cfg, E.pipeline_trainings(cfg, validate(cfg)))
    timings = E.time_models([t for _, trainings in runs.values() for t in trainings])
    for key, timing in timings.items():
        print(" ".join(key), {k: round(v, 4) for k, v in dataclasses.asdict(timing).items()})
    for name, (cfg, trainings) in runs.items():
        total, rows = E.estimate(trainings, timings, cfg.overlap)
        parts = "; ".join(f"{E.KIND_WORDS.get(r.kind, r.kind)} {r.trainings} x, {r.steps} steps, {r.windows} windows: "
                          f"{r.seconds:.0f} CPU s" for r in rows.values())
        print(f"{name}: {total:.0f} CPU s ({total / 120:.1f} min on 2 cores at best); {parts}")
    print(f"this process: {time.process_time():.0f} CPU s; 1-minute load average {open('/proc/loadavg').read().split()[0]}")


if __name__ == "__main__":
    main(json.loads(sys.argv[1]), sys.argv[2:])

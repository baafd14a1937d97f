"""Do the fused batch norm and Adam kernels pay off? Every variant built in one process, their steps interleaved.

The same model is built four times: fused batch norm and Adam (the default), Keras's own for both, and
Keras's own for one piece at a time. Then the variants take turns, one training step each (waiting for
its batch as a training loop does), for ``--warmup`` untimed and ``--steps`` timed rounds, the order
rotating every round. On a machine shared with other work the load changes from second to second;
neighbouring steps of different variants see nearly the same load, so each round's time ratio against
the fused step is a fair comparison, and the median over rounds is the figure to quote. The process's
CPU time per step is recorded beside the wall time: the work done, whatever share of the cores it got.

Usage: ``out = measure_ablation(resolve(BenchConfig(model="pix2pix", ablation=True)))``; ``format_ablation(out)``.
"""

from __future__ import annotations

import dataclasses
import os
import statistics
import tempfile
import time
from pathlib import Path

from .measure import machine, process_peak_rss_mb, sync

VARIANTS = {"fused": None, "keras_both": "all", "keras_batchnorm": "batchnorm", "keras_adam": "adam"}


def measure_ablation(cfg) -> dict:
    """Images/s of each variant (median step) and its speed relative to the fused one (median of the
    per-round ratios); ``cfg`` after ``resolve`` and ``validate``."""
    load_before = os.getloadavg()[0]
    from ..runtime import setup_runtime
    from .project import BUILDERS, synthetic_scenes

    rt = setup_runtime(cfg.precision, seed=cfg.seed)
    photos, labels = synthetic_scenes(cfg.scenes or max(2 * cfg.batch, 8), cfg.size, cfg.seed)
    benches = {}
    with tempfile.TemporaryDirectory(prefix="landaug_ablation_") as tmp:
        for name, no_fused in VARIANTS.items():
            benches[name] = BUILDERS[cfg.model](dataclasses.replace(cfg, no_fused=no_fused), photos, labels, Path(tmp))
        # Warm-up in turns too: a variant built first must not run its first timed step with cold memory.
        for _ in range(cfg.warmup):
            for bench in benches.values():
                sync(bench.train(next(bench.batches)))
        names = list(benches)
        wall, cpu = {name: [] for name in names}, {name: [] for name in names}
        for r in range(cfg.steps):
            for name in names[r % len(names):] + names[:r % len(names)]:
                bench = benches[name]
                t0, c0 = time.perf_counter(), time.process_time()
                sync(bench.train(next(bench.batches)))
                wall[name].append(time.perf_counter() - t0)
                cpu[name].append(time.process_time() - c0)
    variants = {}
    for name in names:
        ratios = [f / t for f, t in zip(wall["fused"], wall[name])]
        cpu_ratios = [f / t for f, t in zip(cpu["fused"], cpu[name])]
        variants[name] = {"label": benches[name].label, "fused": benches[name].fused,
                          "images_per_second": cfg.batch / statistics.median(wall[name]),
                          "step_seconds": statistics.median(wall[name]), "step_seconds_all": wall[name],
                          "speed_vs_fused": statistics.median(ratios),
                          # CPU seconds of this process: the work, whatever share of the cores it got
                          "cpu_seconds_per_step": statistics.median(cpu[name]), "cpu_seconds_all": cpu[name],
                          "cpu_speed_vs_fused": statistics.median(cpu_ratios)}
    return {"mode": "ablation", "model": cfg.model, "size": cfg.size, "batch": cfg.batch, "width": cfg.width,
            "precision": rt.precision, "xla": cfg.xla, "rounds": cfg.steps, "warmup": cfg.warmup,
            "variants": variants, "process_peak_host_memory_mb": process_peak_rss_mb(), "machine": machine(),
            "load_average_before": load_before, "load_average_after": os.getloadavg()[0]}


def format_ablation(out: dict) -> str:
    m = out["machine"]
    lines = [f"bench: fused kernels ablation, {out['model']} {out['size']} px, batch {out['batch']}, "
             f"width {out['width']:g}, {out['precision']}, {out['rounds']} interleaved rounds on {m['cpu']} "
             f"({m['cores']} cores), load {out['load_average_before']:.2f} -> {out['load_average_after']:.2f}"]
    for name in VARIANTS:
        v = out["variants"][name]
        lines.append(f"  {v['label']:60s} {v['images_per_second']:8.2f} images/s  "
                     f"{v['speed_vs_fused']:6.3f}x the fused speed ({v['cpu_speed_vs_fused']:.3f}x in CPU time)")
    return "\n".join(lines)
